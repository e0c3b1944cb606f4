/* A backend's grid (matrix/<backend>.html): reads the JSON data block of this page (no fetch, so
   it works from file://), sums the counts the filters keep per (case, API), and draws the grid
   with DOM text nodes (never innerHTML: every string is data). The filters, search and sort live
   in the URL's fragment (#statuses=known,mismatch&sort=problems), so a view can be linked and
   survives a reload; skipped cells are not counted unless asked for. window.gridStats holds the
   last drawing's numbers. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("g-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var FILTERS = ["sources", "statuses", "dtypes", "devices", "tags"];
  var SEVERITY = ["error", "mismatch", "unstable", "known", "match", "unsupported", "skipped"];
  var KNOWN = ["match", "known", "mismatch", "error", "unstable", "unsupported", "skipped"];
  var SKIPPED = D.statuses.indexOf("skipped");
  var rank = function (s) { var i = SEVERITY.indexOf(s); return i < 0 ? 0 : i; };
  var state = { sort: "case" };
  var links = {};
  D.links.forEach(function (l) { links[l[0] + "," + l[1]] = l[2]; });

  function fill(id, values) {
    var sel = $(id);
    values.slice().sort().forEach(function (v) {
      if (v === "") { return; }
      var o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  FILTERS.forEach(function (k) { fill("g-" + k, D[k]); });

  // the chosen values of a filter as indices (none, or "all" chosen: no filter)
  function chosen(k) {
    var out = [], opts = $("g-" + k).options;
    for (var i = 0; i < opts.length; i++) { if (opts[i].selected) { out.push(opts[i].value); } }
    return out.indexOf("") >= 0 ? [] : out;
  }
  function indices(k) { return chosen(k).map(function (v) { return D[k].indexOf(v); }); }

  function apply(keepHash) {
    var t0 = performance.now();
    var st = indices("statuses"), dt = indices("dtypes"), dv = indices("devices");
    var src = indices("sources"), tg = indices("tags"), q = $("g-search").value.trim().toLowerCase();
    var countSkipped = $("g-skipped").checked || st.indexOf(SKIPPED) >= 0;
    var caseOk = D.cases.map(function (c) {
      if (src.length && src.indexOf(c[4]) < 0) { return false; }
      if (tg.length && !tg.some(function (t) { return c[3].indexOf(t) >= 0; })) { return false; }
      return !q || (c[0] + "\u0001" + c[1]).toLowerCase().indexOf(q) >= 0;
    });
    var cellsOf = {}, apisUsed = {}, rowsUsed = {}, total = 0;
    for (var i = 0; i < D.counts.length; i++) {
      var r = D.counts[i];  // [case, api, dtype, device, status, n]
      if (!caseOk[r[0]] || (st.length && st.indexOf(r[4]) < 0) || (dt.length && dt.indexOf(r[2]) < 0)
          || (dv.length && dv.indexOf(r[3]) < 0) || (!countSkipped && r[4] === SKIPPED)) { continue; }
      var key = r[0] + "," + r[1], g = cellsOf[key] || (cellsOf[key] = { n: 0, by: {} });
      g.n += r[5]; g.by[r[4]] = (g.by[r[4]] || 0) + r[5]; total += r[5];
      apisUsed[r[1]] = 1;
      var row = rowsUsed[r[0]] || (rowsUsed[r[0]] = { n: 0, problems: 0 });
      row.n += r[5];
      var s = D.statuses[r[4]];
      if (rank(s) < 3) { row.problems += r[5]; }
    }
    var apis = Object.keys(apisUsed).map(Number).sort(function (a, b) { return D.apis[a] < D.apis[b] ? -1 : 1; });
    var rows = Object.keys(rowsUsed).map(Number);
    var byCase = function (a, b) { return D.cases[a][0] < D.cases[b][0] ? -1 : 1; };
    rows.sort(state.sort === "problems" ? function (a, b) { return rowsUsed[b].problems - rowsUsed[a].problems || byCase(a, b); }
      : state.sort === "cells" ? function (a, b) { return rowsUsed[b].n - rowsUsed[a].n || byCase(a, b); } : byCase);
    draw(rows, apis, cellsOf);
    if (!keepHash) { writeHash(); }
    var ms = performance.now() - t0;
    window.gridStats = { ms: ms, cells: total, rows: rows.length, columns: apis.length };
    $("g-count").textContent = total + " cells in " + rows.length + " cases \u00d7 " + apis.length + " APIs";
    $("g-time").textContent = "(counted and drawn in " + ms.toFixed(1) + " ms)";
  }

  function draw(rows, apis, cellsOf) {
    var head = $("g-head"), body = $("g-body"), tr = document.createElement("tr");
    var th = document.createElement("th"); th.textContent = "Case"; tr.appendChild(th);
    apis.forEach(function (a) { var h = document.createElement("th"); h.className = "api"; h.textContent = D.apis[a]; tr.appendChild(h); });
    head.textContent = ""; head.appendChild(tr);
    var frag = document.createDocumentFragment();
    rows.forEach(function (ci) {
      var c = D.cases[ci], row = document.createElement("tr"), td = document.createElement("td"), a = document.createElement("a");
      var page = "../cases/" + c[2] + ".html";  // (grid.py's _stem)
      a.href = page; a.textContent = c[0]; a.title = c[1]; td.appendChild(a); row.appendChild(td);
      apis.forEach(function (ai) {
        var cell = document.createElement("td"), g = cellsOf[ci + "," + ai];
        if (g) {
          var statuses = Object.keys(g.by).map(Number).sort(function (x, y) { return rank(D.statuses[x]) - rank(D.statuses[y]); });
          var worst = D.statuses[statuses[0]];
          cell.className = "g c-" + (KNOWN.indexOf(worst) >= 0 ? worst : "other");
          var link = document.createElement("a");
          link.href = page + "#" + (links[ci + "," + ai] || "");
          link.textContent = String(g.n);
          link.title = D.apis[ai] + ": " + statuses.map(function (s) { return D.statuses[s] + " " + g.by[s]; }).join(", ");
          cell.setAttribute("data-status", worst);
          cell.appendChild(link);
        }
        row.appendChild(cell);
      });
      frag.appendChild(row);
    });
    body.textContent = ""; body.appendChild(frag);
  }

  function writeHash() {
    var parts = [];
    FILTERS.forEach(function (k) { var v = chosen(k); if (v.length) { parts.push(k + "=" + v.map(encodeURIComponent).join(",")); } });
    var q = $("g-search").value.trim();
    if (q) { parts.push("q=" + encodeURIComponent(q)); }
    if (state.sort !== "case") { parts.push("sort=" + state.sort); }
    if ($("g-skipped").checked) { parts.push("skipped=1"); }
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (location.hash !== hash) { history.replaceState(null, "", hash || location.pathname); }
  }

  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var eq = part.indexOf("="); if (eq < 0) { return; }
      var k = part.slice(0, eq), v = part.slice(eq + 1);
      if (FILTERS.indexOf(k) >= 0) {
        var vals = v.split(",").map(decodeURIComponent), opts = $("g-" + k).options;
        for (var i = 0; i < opts.length; i++) { opts[i].selected = vals.indexOf(opts[i].value) >= 0; }
      } else if (k === "q") { $("g-search").value = decodeURIComponent(v); }
      else if (k === "sort" && ["case", "problems", "cells"].indexOf(v) >= 0) { state.sort = v; $("g-sort").value = v; }
      else if (k === "skipped") { $("g-skipped").checked = v === "1"; }
    });
  }

  FILTERS.concat(["skipped"]).forEach(function (k) { $("g-" + k).addEventListener("change", function () { apply(); }); });
  $("g-sort").addEventListener("change", function () { state.sort = this.value; apply(); });
  var timer = null;
  $("g-search").addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  $("g-form").addEventListener("submit", function (e) { e.preventDefault(); apply(); });
  window.addEventListener("hashchange", function () { readHash(); apply(true); });
  readHash();
  apply(true);
}());
