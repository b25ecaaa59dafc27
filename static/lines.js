// Line ranges in the log: `#L10-L20` highlights lines 10 to 20 and scrolls to the first; a click
// on a line number with Shift held extends the range from the last one clicked. Without this
// script a single `#L10` still works (CSS :target).
(function () {
  "use strict";
  var RANGE = /^#L(\d+)(?:-L(\d+))?$/;

  function highlight() {
    var old = document.querySelectorAll(".log .line.hl");
    for (var i = 0; i < old.length; i++) old[i].classList.remove("hl");
    var m = RANGE.exec(window.location.hash);
    if (!m) return;
    var from = parseInt(m[1], 10), to = parseInt(m[2] || m[1], 10);
    if (to < from) { var t = from; from = to; to = t; }
    for (var n = from; n <= to; n++) {
      var line = document.getElementById("L" + n);
      if (line) line.classList.add("hl");
    }
    var first = document.getElementById("L" + from);
    if (first && m[2]) first.scrollIntoView({ block: "center" });
  }

  var anchor = null;
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".log a.ln");
    if (!link) return;
    var n = parseInt(link.getAttribute("href").slice(2), 10);
    if (event.shiftKey && anchor !== null) {
      event.preventDefault();
      history.replaceState(null, "", "#L" + Math.min(anchor, n) + "-L" + Math.max(anchor, n));
      highlight();
    } else {
      anchor = n;
    }
  });
  window.addEventListener("hashchange", highlight);
  highlight();
})();
