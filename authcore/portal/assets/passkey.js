// A passkey ceremony on the step-up page ("get") or the passkeys page
// ("create"): ask the portal for the options, hand them to the browser,
// and post its answer back. The portal answers JSON: {"publicKey"} with
// the options, then {"location"} to go to, or {"message"} in words.
(function () {
  "use strict";
  var box = document.getElementById("passkey");
  if (!box) {
    return;
  }
  var button = document.getElementById("passkey-start");
  var status = document.getElementById("passkey-status");
  var d = box.dataset;

  function say(words, isError) {
    status.textContent = words;
    status.className = isError ? "error" : "status";
    status.setAttribute("role", isError ? "alert" : "status");
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    button.disabled = true;
    say(d.wordsUnsupported, true);
    return;
  }

  // WebAuthn takes bytes where JSON has base64url strings, and back.
  function bytes(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }
  function text(buf) {
    if (!buf) {
      return undefined;
    }
    var b = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < b.length; i++) {
      bin += String.fromCharCode(b[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: bytes(c.id) });
    });
  }

  // ServerSaid is a refusal the portal put in words.
  function ServerSaid(message) {
    this.message = message;
  }

  function post(url, fields) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(fields),
    }).then(function (resp) {
      return resp.json().then(
        function (body) {
          if (!resp.ok) {
            throw new ServerSaid(body.message || d.wordsFailed);
          }
          return body;
        },
        function () {
          throw new ServerSaid(d.wordsFailed);
        }
      );
    });
  }

  function ceremony(pk) {
    pk.challenge = bytes(pk.challenge);
    if (d.ceremony === "create") {
      pk.user = Object.assign({}, pk.user, { id: bytes(pk.user.id) });
      pk.excludeCredentials = descriptors(pk.excludeCredentials);
      return navigator.credentials.create({ publicKey: pk });
    }
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return navigator.credentials.get({ publicKey: pk });
  }

  function answer(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: text(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: text(r.clientDataJSON) },
    };
    if (d.ceremony === "create") {
      out.response.attestationObject = text(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = text(r.authenticatorData);
      out.response.signature = text(r.signature);
      out.response.userHandle = text(r.userHandle);
    }
    return JSON.stringify(out);
  }

  var finishURL = new URL(d.finishUrl, document.baseURI);

  button.addEventListener("click", function () {
    button.disabled = true;
    say(d.wordsWaiting, false);
    post(d.optionsUrl, { csrf: d.csrf })
      .then(function (body) {
        return ceremony(body.publicKey);
      })
      .then(function (cred) {
        return post(finishURL, { csrf: d.csrf, "return": d.return, credential: answer(cred) });
      })
      .then(function (body) {
        window.location.assign(new URL(body.location, finishURL));
      })
      .catch(function (err) {
        button.disabled = false;
        if (err instanceof ServerSaid) {
          say(err.message, true);
        } else if (err && (err.name === "NotAllowedError" || err.name === "AbortError" || err.name === "InvalidStateError")) {
          // Cancelled, timed out, or (create) a passkey of this account
          // already on this authenticator.
          say(d.wordsCancelled, true);
        } else {
          say(d.wordsFailed, true);
        }
      });
  });
})();
