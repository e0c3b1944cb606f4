/* The matrix page: reads the JSON data block of this page (no fetch, so it works from file://),
   filters and searches all rows in memory and renders one page of rows at a time with DOM text
   nodes (never innerHTML: every string is data). window.matrixStats holds the last filter time. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("m-data").textContent);
  var T = data.tables, rows = data.rows, cases = data.cases;
  var C = {}; data.columns.forEach(function (name, i) { C[name] = i; });
  var $ = function (id) { return document.getElementById(id); };
  var state = { page: 0, hits: [] };

  // search text per row, built once
  var text = rows.map(function (r) {
    var c = cases[r[C.case]];
    return [c[0], c[1], T.api[r[C.api]], T.backend[r[C.backend]], T.dtype[r[C.dtype]], T.device[r[C.device]],
            T.status[r[C.status]], T.difference[r[C.difference]], T.message[r[C.message]], r[C.sweep],
            (c[3] || []).join(" ")].join("\u0001").toLowerCase();
  });

  function fill(id, values) {
    var sel = $(id);
    values.slice().sort().forEach(function (v) {
      if (v === "") { return; }
      var o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  fill("m-backend", T.backend); fill("m-api", T.api); fill("m-status", T.status);
  fill("m-dtype", T.dtype); fill("m-device", T.device);
  var tags = {}; cases.forEach(function (c) { (c[3] || []).forEach(function (t) { tags[t] = 1; }); });
  fill("m-tag", Object.keys(tags));

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

  function apply() {
    var t0 = performance.now();
    var want = {}, keys = ["backend", "api", "status", "dtype", "device"];
    keys.forEach(function (k) { var v = $("m-" + k).value; want[k] = v === "" ? -1 : T[k].indexOf(v); });
    var tag = $("m-tag").value, q = $("m-search").value.trim().toLowerCase();
    var hits = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], ok = true;
      for (var k = 0; k < keys.length; k++) {
        if (want[keys[k]] !== -1 && r[C[keys[k]]] !== want[keys[k]]) { ok = false; break; }
      }
      if (!ok) { continue; }
      if (tag && (cases[r[C.case]][3] || []).indexOf(tag) < 0) { continue; }
      if (q && text[i].indexOf(q) < 0) { continue; }
      hits.push(i);
    }
    state.hits = hits; state.page = 0;
    draw();
    var ms = performance.now() - t0;
    window.matrixStats = { filterMs: ms, hits: hits.length, total: rows.length };
    $("m-time").textContent = "(filtered and drawn in " + ms.toFixed(1) + " ms)";
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
      a.href = "cases/" + c[2] + ".html#" + r[C.anchor]; a.textContent = c[0]; a.title = c[1];
      td.appendChild(a); tr.appendChild(td);
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
  }

  ["m-backend", "m-api", "m-status", "m-tag", "m-dtype", "m-device"].forEach(function (id) {
    $(id).addEventListener("change", apply);
  });
  var timer = null;
  $("m-search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  $("m-size").addEventListener("change", draw);
  $("m-prev").addEventListener("click", function () { state.page -= 1; draw(); });
  $("m-next").addEventListener("click", function () { state.page += 1; draw(); });
  $("m-form").addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  apply();
})();
