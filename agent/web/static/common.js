// Shared by the box's three pages: their texts in zh-CN and English, and the top bar set up once the
// document is there (webauth's page.js, loaded before it, has the CSRF token, JSON calls and the top bar).
"use strict";
Object.assign(TEXT["zh-CN"], {
  live: "实时画面", zones: "区域与遮罩", cases: "最近案件", logout: "退出", other: "English",
  state: "状态", decoded: "已解码", sampled: "已采样", dropped: "丢弃", reconnects: "重连", stalls: "卡顿",
  analysed: "已分析", detections: "检测", nocase: "暂无案件", noframe: "等待画面…", map: "位置",
  source: "视频源", type: "类型", since: "开始时间", until: "结束时间", filter: "筛选", all: "全部",
  accepted: "接收时间", upload: "上传状态", pending: "待上传", sent: "已发送", acked: "已确认",
  rejected: "被拒绝", verified: "签名有效", unverified: "签名无效", snapshot: "快照", crop: "特写",
  clip: "视频片段", json: "案件 JSON", explanation: "判定依据", gone: "已确认并从盒子上删除",
  name: "名称", kind: "种类", zone: "区域", mask: "遮罩", close: "闭合多边形", undo: "撤销一点",
  remove: "删除", save: "保存并应用", saved: "已保存并应用", clickhint: "在画面上点击多边形的各个角点",
  failed: "未能保存", types_hint: "适用的案件类型（不选即全部）", score: "得分",
  local_clip: "仅保存在盒子上（未上传、未签名）",
});
Object.assign(TEXT.en, {
  live: "Live", zones: "Zones and masks", cases: "Recent cases", logout: "Log out", other: "中文",
  state: "State", decoded: "decoded", sampled: "sampled", dropped: "dropped", reconnects: "reconnects",
  stalls: "stalls", analysed: "analysed", detections: "detections", nocase: "No cases yet",
  noframe: "Waiting for a frame…", map: "Position", source: "Source", type: "Type", since: "From",
  until: "To", filter: "Filter", all: "all", accepted: "Accepted", upload: "Upload", pending: "pending",
  sent: "sent", acked: "acknowledged", rejected: "rejected", verified: "signature verifies",
  unverified: "signature FAILS", snapshot: "Snapshot", crop: "Crop", clip: "Clip", json: "Case JSON",
  explanation: "Explanation", gone: "acknowledged and removed from the box", name: "Name", kind: "Kind",
  zone: "zone", mask: "mask", close: "Close polygon", undo: "Undo point", remove: "Remove",
  save: "Save and apply", saved: "Saved and applied", clickhint: "Click the polygon's corners on the picture",
  failed: "Not saved", types_hint: "Case types it applies to (none: all)", score: "Score",
  local_clip: "kept on the box only (not uploaded, not signed)",
});
document.addEventListener("DOMContentLoaded", topBar);
