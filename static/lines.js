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
    var link = event.target.closest && event.target.closest(".log .line > a");
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
  // A long log is served a page at a time: a link to a line on another page goes to that page.
  function toPageOfLine() {
    var log = document.getElementById("log");
    var m = RANGE.exec(window.location.hash);
    if (!log || !log.dataset.pageLines || !m || document.getElementById("L" + m[1])) return false;
    var n = parseInt(m[1], 10), lines = parseInt(log.dataset.lines, 10);
    if (n < 1 || n > lines) return false;
    var page = Math.floor((n - 1) / parseInt(log.dataset.pageLines, 10)) + 1;
    if (String(page) === log.dataset.page) return false;
    window.location.replace("?page=" + page + window.location.hash);
    return true;
  }

  // The timestamps toggle is plain CSS; this only remembers it between pages.
  var toggle = document.getElementById("ts-toggle");
  if (toggle) {
    try {
      toggle.checked = window.localStorage.getItem("tether.timestamps") === "1";
      toggle.addEventListener("change", function () {
        window.localStorage.setItem("tether.timestamps", toggle.checked ? "1" : "0");
      });
    } catch (e) { /* storage refused: the toggle still works for this page */ }
  }

  window.addEventListener("hashchange", function () { if (!toPageOfLine()) highlight(); });
  if (!toPageOfLine()) highlight();
})();
