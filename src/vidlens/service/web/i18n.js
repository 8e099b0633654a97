// UI text in English and Chinese. t("key", {n: 3}) fills {n}.
"use strict";

const MESSAGES = {
  en: {
    "nav.overview": "Overview", "nav.search": "Search", "nav.upload": "Upload", "nav.tags": "Tag review",
    "nav.reports": "Reports",
    "token.button": "API token", "token.title": "API token",
    "token.help": "Write actions (upload, review, feedback) need the token printed by `vidlens serve`. It is kept in this browser only.",
    "token.save": "Save", "token.clear": "Forget", "token.missing": "Set the API token first (top right).",
    "token.set": "token set",
    "overview.title": "Library overview", "overview.videos": "Videos", "overview.hours": "Hours",
    "overview.audio": "With audio", "overview.errors": "Errors", "overview.jobs": "Jobs running / queued",
    "overview.categories": "Category distribution", "overview.no_categories": "No categories yet: the classifier is not wired on this server, or nothing is classified.",
    "overview.features": "Features extracted", "overview.recent": "Recent videos", "overview.recent_jobs": "Recent jobs",
    "overview.empty": "The library is empty. Upload a clip to start.",
    "search.title": "Search", "search.placeholder": "Search titles, speech, on-screen text… e.g. 红烧肉",
    "search.button": "Search", "search.min": "Min s", "search.max": "Max s", "search.speech": "Speech",
    "search.any": "any", "search.yes": "with speech", "search.no": "without speech", "search.lang": "Language",
    "search.category": "Category", "search.results": "{n} results", "search.none": "No videos match.",
    "search.matched": "matched in", "search.engine": "engine",
    "upload.title": "Upload a clip", "upload.file": "Video or audio file", "upload.vtitle": "Title",
    "upload.summary": "Summary", "upload.button": "Upload and analyse", "upload.sending": "Uploading… {p}%",
    "upload.queued": "Uploaded. Analysis queued…", "upload.progress": "Analysing: {done}/{total}",
    "upload.done": "Analysis finished.", "upload.failed": "Analysis failed: {e}", "upload.open": "Open the video page",
    "upload.exists": "This file was already in the library.",
    "video.player": "Player", "video.categories": "Categories", "video.tags": "Tags", "video.transcript": "Transcript",
    "video.ocr": "On-screen text", "video.concepts": "Visual concepts", "video.similar": "Similar videos",
    "video.meta": "Details", "video.features": "Features", "video.none": "none",
    "video.no_categories": "Not classified (classifier not wired yet).", "video.no_tags": "No tags (tagger not wired yet).",
    "video.channel": "channel", "video.score": "score", "video.duration": "Duration", "video.size": "Size",
    "video.errors": "Errors",
    "tags.title": "Tag review", "tags.unavailable": "Tag review is not available on this server yet (the tagging engine is not wired).",
    "tags.approve": "Approve", "tags.reject": "Reject", "tags.empty": "No candidates waiting for review.",
    "reports.title": "Evaluation reports", "reports.empty": "No reports yet. Training and evaluation runs write them to LIBRARY/reports.",
    "reports.per_class": "Per-class metrics", "reports.confusion": "Confusion matrix", "reports.modalities": "Modality contribution",
    "reports.summary": "Summary", "reports.raw": "Raw JSON",
    "common.loading": "Loading…", "common.error": "Error: {e}", "common.back": "Back", "common.unavailable": "not available",
    "footer": "vidlens {v} · API docs at /api/docs",
  },
  zh: {
    "nav.overview": "概览", "nav.search": "搜索", "nav.upload": "上传", "nav.tags": "标签审核", "nav.reports": "评估报告",
    "token.button": "访问令牌", "token.title": "访问令牌",
    "token.help": "写操作（上传、审核、反馈）需要 `vidlens serve` 打印的令牌，令牌只保存在本浏览器中。",
    "token.save": "保存", "token.clear": "清除", "token.missing": "请先设置访问令牌（右上角）。", "token.set": "已设置令牌",
    "overview.title": "视频库概览", "overview.videos": "视频数", "overview.hours": "总时长（小时）",
    "overview.audio": "含音频", "overview.errors": "错误", "overview.jobs": "运行中 / 排队任务",
    "overview.categories": "类目分布", "overview.no_categories": "暂无类目：本服务尚未接入分类器，或还没有视频被分类。",
    "overview.features": "已提取特征", "overview.recent": "最新视频", "overview.recent_jobs": "最近任务",
    "overview.empty": "视频库为空，请先上传视频。",
    "search.title": "搜索", "search.placeholder": "搜索标题、语音、画面文字……例如 红烧肉", "search.button": "搜索",
    "search.min": "最短秒数", "search.max": "最长秒数", "search.speech": "语音", "search.any": "不限",
    "search.yes": "有语音", "search.no": "无语音", "search.lang": "语言", "search.category": "类目",
    "search.results": "共 {n} 条结果", "search.none": "没有匹配的视频。", "search.matched": "匹配字段", "search.engine": "引擎",
    "upload.title": "上传视频", "upload.file": "视频或音频文件", "upload.vtitle": "标题", "upload.summary": "简介",
    "upload.button": "上传并分析", "upload.sending": "上传中…… {p}%", "upload.queued": "已上传，分析任务排队中……",
    "upload.progress": "分析中：{done}/{total}", "upload.done": "分析完成。", "upload.failed": "分析失败：{e}",
    "upload.open": "打开视频页面", "upload.exists": "该文件已在视频库中。",
    "video.player": "播放器", "video.categories": "类目", "video.tags": "标签", "video.transcript": "语音转写",
    "video.ocr": "画面文字", "video.concepts": "视觉概念", "video.similar": "相似视频", "video.meta": "详细信息",
    "video.features": "特征", "video.none": "无", "video.no_categories": "未分类（尚未接入分类器）。",
    "video.no_tags": "暂无标签（尚未接入打标器）。", "video.channel": "召回通道", "video.score": "分数",
    "video.duration": "时长", "video.size": "大小", "video.errors": "错误",
    "tags.title": "标签审核", "tags.unavailable": "本服务尚未提供标签审核（打标引擎未接入）。", "tags.approve": "通过",
    "tags.reject": "拒绝", "tags.empty": "没有待审核的候选标签。",
    "reports.title": "评估报告", "reports.empty": "暂无报告。训练和评估会把报告写入 LIBRARY/reports。",
    "reports.per_class": "各类别指标", "reports.confusion": "混淆矩阵", "reports.modalities": "模态贡献",
    "reports.summary": "概要", "reports.raw": "原始 JSON",
    "common.loading": "加载中……", "common.error": "出错：{e}", "common.back": "返回", "common.unavailable": "不可用",
    "footer": "vidlens {v} · 接口文档见 /api/docs",
  },
};

function currentLang() {
  const saved = localStorage.getItem("vidlens.lang");
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

function t(key, vars) {
  const lang = currentLang();
  let text = (MESSAGES[lang] && MESSAGES[lang][key]) || MESSAGES.en[key] || key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

function applyStaticText() {
  document.documentElement.lang = currentLang() === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const toggle = document.getElementById("lang-toggle");
  if (toggle) toggle.textContent = currentLang() === "zh" ? "English" : "中文";
}
