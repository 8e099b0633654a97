"""Training losses, registered in ``LOSSES``.

- ``hmc``: level-1 CE + λ · level-2 CE + β · hierarchy mismatch (Taobao HMC).
"""

from vidlens.models.losses.hmc_loss import HMCLoss, hierarchy_mismatch

__all__ = ["HMCLoss", "hierarchy_mismatch"]
