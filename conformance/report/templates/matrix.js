/* The matrix page: reads the JSON data block of this page (no fetch, so it works from file://),
   filters (several values per filter), searches and sorts all rows in memory and renders one
   page of rows at a time with DOM text nodes (never innerHTML: every string is data). The
   filters, search and sort live in the URL's fragment (#status=known,mismatch&sort=-rel), so a
   view can be linked and survives a reload; skipped cells are hidden unless asked for.
   window.matrixStats holds the last filter time. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("m-data").textContent);
  var T = data.tables, rows = data.rows, cases = data.cases;
  var C = {}; data.columns.forEach(function (name, i) { C[name] = i; });
  var $ = function (id) { return document.getElementById(id); };
  var state = { page: 0, hits: [], sort: "" };
  var FILTERS = ["source", "api", "backend", "status", "dtype", "device", "tag"];
  var SKIPPED = T.status.indexOf("skipped");

  // search text per row, built once
  var text = rows.map(function (r) {
    var c = cases[r[C.case]];
    return [c[0], c[1], T.api[r[C.api]], T.backend[r[C.backend]], T.dtype[r[C.dtype]], T.device[r[C.device]],
            T.status[r[C.status]], T.difference[r[C.difference]], T.message[r[C.message]], r[C.sweep],
            T.source ? T.source[r[C.source]] : "", (c[3] || []).join(" ")].join("\u0001").toLowerCase();
  });

  function fill(id, values) {
    var sel = $(id);
    values.slice().sort().forEach(function (v) {
      if (v === "") { return; }
      var o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  var tags = {}; cases.forEach(function (c) { (c[3] || []).forEach(function (t) { tags[t] = 1; }); });
  FILTERS.forEach(function (k) { fill("m-" + k, k === "tag" ? Object.keys(tags) : (T[k] || [])); });

  // the chosen values of a filter (none, or "all" chosen: no filter)
  function chosen(k) {
    var out = [], opts = $("m-" + k).options;
    for (var i = 0; i < opts.length; i++) { if (opts[i].selected) { out.push(opts[i].value); } }
    return out.indexOf("") >= 0 ? [] : out;
  }

  // Python's "%.3g" (conformance/report/fmt.py fmt_num), so the matrix shows the very text of
  // the case pages: 1.5e-07, not toPrecision's 1.5e-7 or 0.0000150.
  function fmt(x) {
    if (x === null || x === undefined) { return "\u2014"; }
    if (typeof x === "string") { return x; }
    if (x === 0) { return "0"; }
    if (Number.isInteger(x) && Math.abs(x) < 1e15) { return String(x); }
    var parts = x.toExponential(2).split("e"), exp = parseInt(parts[1], 10);
    var strip = function (t) { return t.indexOf(".") < 0 ? t : t.replace(/0+$/, "").replace(/\.$/, ""); };
    if (exp < -4 || exp >= 3) {
      return strip(parts[0]) + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }
    return strip(x.toFixed(2 - exp));
  }
  function cell(tr, value, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = value;
    tr.appendChild(td);
    return td;
  }

  // sort keys per column (the th's data-sort): numbers as numbers (inf above every number)
  function num(x) { return x === null || x === undefined ? -Infinity : x === "inf" || x === "NaN" ? Infinity : x === "-inf" ? -Infinity : x; }
  var KEYS = {
    case: function (r) { return cases[r[C.case]][0]; }, source: function (r) { return T.source ? T.source[r[C.source]] : ""; },
    api: function (r) { return T.api[r[C.api]]; }, backend: function (r) { return T.backend[r[C.backend]]; },
    dtype: function (r) { return T.dtype[r[C.dtype]]; }, device: function (r) { return T.device[r[C.device]]; },
    sweep: function (r) { return r[C.sweep]; }, status: function (r) { return T.status[r[C.status]]; },
    difference: function (r) { return T.difference[r[C.difference]]; },
    rel: function (r) { return num(r[C.max_rel_err]); }, abs: function (r) { return num(r[C.max_abs_err]); },
    mismatched: function (r) { return num(r[C.mismatched]); }
  };

  function apply(keepHash) {
    var t0 = performance.now();
    var want = {};
    FILTERS.forEach(function (k) {
      if (k === "tag") { return; }
      want[k] = chosen(k).map(function (v) { return T[k].indexOf(v); });
    });
    var tagsWanted = chosen("tag"), q = $("m-search").value.trim().toLowerCase();
    var showSkipped = $("m-skipped").checked || want.status.indexOf(SKIPPED) >= 0;
    var hits = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ok = true;
      for (var k in want) {
        if (want[k].length && want[k].indexOf(r[C[k]]) < 0) { ok = false; break; }
      }
      if (!ok || (!showSkipped && r[C.status] === SKIPPED)) { continue; }
      if (tagsWanted.length) {
        var ts = cases[r[C.case]][3] || [];
        if (!tagsWanted.some(function (t) { return ts.indexOf(t) >= 0; })) { continue; }
      }
      if (q && text[i].indexOf(q) < 0) { continue; }
      hits.push(i);
    }
    if (state.sort) {
      var desc = state.sort.charAt(0) === "-", key = KEYS[state.sort.replace(/^-/, "")];
      hits.sort(function (a, b) {
        var x = key(rows[a]), y = key(rows[b]);
        return (x < y ? -1 : x > y ? 1 : a - b) * (desc ? -1 : 1);
      });
    }
    state.hits = hits; state.page = 0;
    draw();
    if (!keepHash) { writeHash(); }
    var ms = performance.now() - t0;
    window.matrixStats = { filterMs: ms, hits: hits.length, total: rows.length };
    $("m-time").textContent = "(filtered and drawn in " + ms.toFixed(1) + " ms)";
  }

  function writeHash() {
    var parts = [];
    FILTERS.forEach(function (k) { var v = chosen(k); if (v.length) { parts.push(k + "=" + v.map(encodeURIComponent).join(",")); } });
    var q = $("m-search").value.trim();
    if (q) { parts.push("q=" + encodeURIComponent(q)); }
    if (state.sort) { parts.push("sort=" + state.sort); }
    if ($("m-skipped").checked) { parts.push("skipped=1"); }
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (location.hash !== hash) { history.replaceState(null, "", hash || location.pathname); }
  }

  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var eq = part.indexOf("="); if (eq < 0) { return; }
      var k = part.slice(0, eq), v = part.slice(eq + 1);
      if (FILTERS.indexOf(k) >= 0) {
        var vals = v.split(",").map(decodeURIComponent), opts = $("m-" + k).options;
        for (var i = 0; i < opts.length; i++) { opts[i].selected = vals.indexOf(opts[i].value) >= 0; }
      } else if (k === "q") { $("m-search").value = decodeURIComponent(v); }
      else if (k === "sort" && KEYS[v.replace(/^-/, "")]) { state.sort = v; }
      else if (k === "skipped") { $("m-skipped").checked = v === "1"; }
    });
  }

  function draw() {
    var size = parseInt($("m-size").value, 10), hits = state.hits;
    var pages = Math.max(1, Math.ceil(hits.length / size));
    state.page = Math.min(state.page, pages - 1);
    var body = $("m-body"), frag = document.createDocumentFragment();
    var start = state.page * size;
    for (var j = start; j < Math.min(hits.length, start + size); j++) {
      var r = rows[hits[j]], c = cases[r[C.case]], st = T.status[r[C.status]];
      var tr = document.createElement("tr");
      tr.className = "c-" + (["match", "known", "mismatch", "error", "unstable", "unsupported", "skipped"].indexOf(st) >= 0 ? st : "other");
      var td = document.createElement("td"), a = document.createElement("a");
      a.href = "cases/" + c[2] + (c[4] ? "/" + T.backend_page[r[C.backend]] : ".html") + "#" + r[C.anchor];
      a.textContent = c[0]; a.title = c[1];
      td.appendChild(a); tr.appendChild(td);
      cell(tr, T.source ? T.source[r[C.source]] : "");
      cell(tr, T.api[r[C.api]]); cell(tr, T.backend[r[C.backend]]); cell(tr, T.dtype[r[C.dtype]]);
      cell(tr, T.device[r[C.device]]); cell(tr, r[C.sweep]);
      cell(tr, st + (r[C.conflict] ? " (conflict)" : ""), "st");
      cell(tr, T.difference[r[C.difference]]);
      cell(tr, fmt(r[C.max_rel_err]), "n").title = "max rel err " + fmt(r[C.max_rel_err]);
      cell(tr, fmt(r[C.max_abs_err]), "n"); cell(tr, fmt(r[C.mismatched]), "n");
      cell(tr, T.message[r[C.message]], "msg");
      frag.appendChild(tr);
    }
    body.textContent = "";
    body.appendChild(frag);
    $("m-count").textContent = hits.length + " of " + rows.length + " cells";
    $("m-page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("m-prev").disabled = state.page === 0;
    $("m-next").disabled = state.page >= pages - 1;
    var ths = document.querySelectorAll("#m-table th[data-sort]");
    for (var i = 0; i < ths.length; i++) {
      var s = ths[i].getAttribute("data-sort");
      ths[i].setAttribute("aria-sort", state.sort === s ? "ascending" : state.sort === "-" + s ? "descending" : "none");
    }
  }

  FILTERS.concat(["skipped"]).forEach(function (k) { $("m-" + k).addEventListener("change", function () { apply(); }); });
  var timer = null;
  $("m-search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  $("m-size").addEventListener("change", draw);
  $("m-prev").addEventListener("click", function () { state.page -= 1; draw(); });
  $("m-next").addEventListener("click", function () { state.page += 1; draw(); });
  $("m-form").addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  var ths = document.querySelectorAll("#m-table th[data-sort]");
  for (var i = 0; i < ths.length; i++) {
    ths[i].addEventListener("click", function () {
      var s = this.getAttribute("data-sort");
      state.sort = state.sort === s ? "-" + s : state.sort === "-" + s ? "" : s;  // up, down, off
      apply();
    });
  }
  window.addEventListener("hashchange", function () { readHash(); apply(true); });
  readHash();
  apply(true);
})();
