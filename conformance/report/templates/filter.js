/* Optional enhancement: hide case groups whose cells are all filtered out by the status
   checkboxes. The page is complete without it. */
(function () {
  var boxes = document.querySelectorAll("#cells input.f");
  if (!boxes.length) { return; }
  var groups = document.querySelectorAll("#cells tbody.grp");
  function update() {
    var shown = {};
    for (var i = 0; i < boxes.length; i++) { shown[boxes[i].value] = boxes[i].checked; }
    for (var j = 0; j < groups.length; j++) {
      var st = (groups[j].getAttribute("data-st") || "").split(" ");
      var any = false;
      for (var k = 0; k < st.length; k++) { if (shown[st[k]]) { any = true; break; } }
      groups[j].classList.toggle("empty", !any);
    }
  }
  for (var i = 0; i < boxes.length; i++) { boxes[i].addEventListener("change", update); }
  update();
})();
