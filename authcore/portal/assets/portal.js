// The push waiting page: ask every second whether the push was answered,
// and go back to the page that needed it as soon as it is approved. The
// "Continue" button does the same without JavaScript.
(function () {
  "use strict";
  var el = document.getElementById("push-status");
  if (!el || el.dataset.status !== "PENDING") {
    return;
  }
  function show(status, words) {
    el.dataset.status = status;
    el.textContent = words;
    el.className = status === "VERIFIED" ? "notice" : "error";
  }
  function poll() {
    fetch(el.dataset.statusUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (resp) {
        if (resp.status === 404) {
          show("GONE", el.dataset.wordsGone);
          return null;
        }
        if (!resp.ok) {
          throw new Error("status " + resp.status);
        }
        return resp.json();
      })
      .then(function (body) {
        if (!body) {
          return;
        }
        switch (body.status) {
          case "PENDING":
            setTimeout(poll, 1000);
            break;
          case "VERIFIED":
            show("VERIFIED", el.dataset.wordsVerified);
            window.location.assign(el.dataset.return);
            break;
          case "DECLINED":
            show("DECLINED", el.dataset.wordsDeclined);
            break;
          default:
            show("EXPIRED", el.dataset.wordsExpired);
        }
      })
      .catch(function () {
        // A blip (the gateway restarting, a lost connection): try again a
        // little later; the Continue button works meanwhile.
        setTimeout(poll, 3000);
      });
  }
  setTimeout(poll, 1000);
})();
