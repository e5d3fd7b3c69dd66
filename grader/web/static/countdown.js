// The question's countdown. The server decides the deadline; this only shows the seconds
// it said were left, counted down on the page's own monotonic clock (not the device's
// wall clock, which may be wrong).
(function () {
  "use strict";
  var timer = document.getElementById("countdown");
  if (!timer) { return; }
  var left = parseFloat(timer.getAttribute("data-seconds-left"));
  var start = performance.now();
  function show() {
    var remaining = Math.max(0, left - (performance.now() - start) / 1000);
    var whole = Math.ceil(remaining);
    timer.textContent = Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
    if (remaining <= 0) {
      timer.parentNode.replaceChild(document.createTextNode("time is up (answers are marked late)"), timer);
      return;
    }
    window.setTimeout(show, 250);
  }
  show();
})();
