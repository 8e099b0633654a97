from vidlens.cli import main

main()
