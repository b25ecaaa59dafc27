// The run page's live log: appends each line the server sends (Server-Sent Events) to the log,
// follows the bottom unless the reader scrolled up, and reloads when the run ends.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.run) return;
  var url = "/runs/" + encodeURIComponent(log.dataset.run) + "/events?after=" +
    encodeURIComponent(log.dataset.last || "0");
  var source = new EventSource(url);
  var page = document.scrollingElement || document.documentElement;

  function atBottom() {
    return page.scrollHeight - page.scrollTop - page.clientHeight < 40;
  }

  source.onmessage = function (event) {
    var follow = atBottom() && !window.location.hash;
    // Trusted: the server's renderer escapes every byte of the log.
    log.insertAdjacentHTML("beforeend", event.data);
    if (follow) page.scrollTop = page.scrollHeight;
  };

  function reload() {
    source.close();
    window.location.reload();
  }
  source.addEventListener("end", reload);
  source.addEventListener("reload", reload);
})();
