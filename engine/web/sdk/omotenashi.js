/* Omotenashi browser snippet: fills [data-omotenashi-slot] blocks from one decide call,
   reports impressions (when visible), clicks and custom events in batches, and keeps
   the visitor id only when consent allows. No dependencies, no build step.
   Omotenashi.init({endpoint, siteKey, consentMode: "opt_out" | "opt_in", ...}) */
(function (window, document) {
  "use strict";
  var VID = "omo_vid", CONSENT = "omo_consent", YEAR = 31536000;
  var MAX_QUEUE = 500;
  var cfg = {}, queue = [], timer = null, listeners = {}, ephemeral = null, seen = {};
  var backoff = 1000;

  function cookie(name, value, maxAge) {
    if (value === undefined) {
      var m = document.cookie.match("(?:^|; )" + name + "=([^;]*)");
      return m ? decodeURIComponent(m[1]) : null;
    }
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge +
      "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  function randomId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  /* Consent as stored by the visitor's last choice: "p1a0" = personalization yes,
     analytics no. Without a choice the site's mode decides. */
  function consentState() {
    var c = cookie(CONSENT), granted = cfg.consentMode !== "opt_in";
    return {
      personalization: c ? c.charAt(1) === "1" : granted,
      analytics: c ? c.charAt(3) === "1" : granted,
      chosen: !!c
    };
  }

  /* The visitor id exists only while some consent allows it; without, each page view
     uses a throwaway id that is never stored, and nothing is tracked. */
  function visitorId() {
    var c = consentState();
    if (!c.personalization && !c.analytics) {
      cookie(VID, "", 0);
      return ephemeral || (ephemeral = "anon-" + randomId());
    }
    var id = cookie(VID);
    if (!id) { id = randomId(); }
    cookie(VID, id, YEAR);
    return id;
  }

  function emit(name, data) {
    (listeners[name] || []).forEach(function (fn) {
      try { fn(data); } catch (e) { if (window.console) { console.error(e); } }
    });
  }

  function request(method, path, body, timeoutMs) {
    var ctrl = window.AbortController ? new AbortController() : null;
    var t = ctrl && setTimeout(function () { ctrl.abort(); }, timeoutMs || 3000);
    return fetch(cfg.endpoint + path, {
      method: method,
      headers: { "Content-Type": "application/json", "X-Api-Key": cfg.siteKey },
      body: body ? JSON.stringify(body) : undefined,
      signal: ctrl ? ctrl.signal : undefined,
      credentials: "omit",
      keepalive: method !== "GET"
    }).then(function (r) {
      if (t) { clearTimeout(t); }
      if (!r.ok) {
        var err = new Error("omotenashi " + path + ": " + r.status);
        err.status = r.status;
        throw err;
      }
      return r.json();
    });
  }

  /* --- events ----------------------------------------------------------------- */

  function track(type, properties, extra) {
    if (!consentState().analytics) { return; }
    var ev = { type: type, visitor_id: visitorId(), channel: "web", event_id: randomId(),
      ts: Date.now() / 1000 };
    if (properties) { ev.properties = properties; }
    for (var k in extra || {}) { if (extra[k] != null) { ev[k] = extra[k]; } }
    queue.push(ev);
    if (queue.length > MAX_QUEUE) { queue.splice(0, queue.length - MAX_QUEUE); }
    if (queue.length >= batchSize()) { flush(); } else { later(cfg.flushMs || 2000); }
  }

  function batchSize() { return Math.min(cfg.batchSize || 20, 100); }

  function later(ms) { if (!timer) { timer = setTimeout(flush, ms); } }

  /* Batches of at most batchSize events (a beacon carries 64 KB at most). A batch the
     network lost is queued again, with the same event ids (the engine drops repeats),
     and retried with backoff; one the engine refused (4xx but 429) is dropped. */
  function flush(beacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    var url = cfg.endpoint + "/v1/events?site_key=" + encodeURIComponent(cfg.siteKey);
    while (queue.length) {
      var batch = queue.splice(0, batchSize()), body = JSON.stringify({ events: batch });
      if (beacon && navigator.sendBeacon &&
          navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) { continue; }
      sendBatch(batch);
    }
  }

  function sendBatch(batch) {
    request("POST", "/v1/events", { events: batch }).then(function () { backoff = 1000; })
      .catch(function (err) {
        if (err.status >= 400 && err.status < 500 && err.status !== 429) { return; }
        queue = batch.concat(queue).slice(0, MAX_QUEUE);
        backoff = Math.min(backoff * 2, 60000);
        later(backoff);
      });
  }

  /* --- slots ------------------------------------------------------------------ */

  function render(el, content) {
    var fields = el.querySelectorAll("[data-omotenashi-field]");
    if (content.html != null && cfg.allowHtml && el.hasAttribute("data-omotenashi-html")) {
      el.innerHTML = String(content.html);
    } else if (fields.length) {
      Array.prototype.forEach.call(fields, function (f) {
        var v = content[f.getAttribute("data-omotenashi-field")];
        if (v == null) { return; }
        if (f.tagName === "IMG") { f.setAttribute("src", String(v)); }
        else if (f.tagName === "A" && f.hasAttribute("data-omotenashi-href")) {
          /* links only to web pages: content must never run script (javascript:) */
          if (/^(https?:\/\/|\/(?!\/)|#|\?)/i.test(String(v))) { f.setAttribute("href", String(v)); }
        } else { f.textContent = String(v); }
      });
    } else if (content.text != null || content.title != null) {
      el.textContent = String(content.text != null ? content.text : content.title);
    }
  }

  function show(els) {
    els.forEach(function (el) { el.style.visibility = ""; el.removeAttribute("aria-busy"); });
  }

  var observer = window.IntersectionObserver && new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      var token = e.target.getAttribute("data-omotenashi-token");
      if (e.isIntersecting && token && !seen[token]) {
        seen[token] = true;
        track("impression", null, { token: token });
        observer.unobserve(e.target);
      }
    });
  }, { threshold: 0.5 });

  function attach(el, decision) {
    el.setAttribute("data-omotenashi-token", decision.token);
    el.setAttribute("data-omotenashi-variant", decision.variant);
    if (observer) { observer.observe(el); }
    if (!el.__omoClick) {
      el.__omoClick = true;
      el.addEventListener("click", function () {
        var token = el.getAttribute("data-omotenashi-token");
        if (token) { track("click", null, { token: token }); flush(true); }
      });
    }
  }

  /* One decide for every slot on the page; blocks stay hidden at most antiFlickerMs,
     then keep the content the page shipped with (the default) if no answer came. */
  function decide(context) {
    var els = Array.prototype.slice.call(document.querySelectorAll("[data-omotenashi-slot]"));
    if (!els.length) { return Promise.resolve(null); }
    var c = consentState();
    if (!c.personalization) {
      emit("decide", { skipped: "no_consent" });
      show(els);
      return Promise.resolve(null);
    }
    els.forEach(function (el) { el.style.visibility = "hidden"; el.setAttribute("aria-busy", "true"); });
    var slots = [], done = false;
    els.forEach(function (el) {
      var s = el.getAttribute("data-omotenashi-slot");
      if (slots.indexOf(s) < 0) { slots.push(s); }
    });
    var wait = cfg.antiFlickerMs || 800;
    var giveUp = setTimeout(function () {
      done = true; show(els); emit("decide", { timedOut: true });
    }, wait);
    var ctx = Object.assign({ device: device(), page: location.pathname }, cfg.context || {},
      context || {});
    return request("POST", "/v1/decide", { visitor_id: visitorId(), slots: slots, context: ctx }, wait)
      .then(function (body) {
        if (done) { return body; }
        clearTimeout(giveUp);
        var bySlot = {};
        body.decisions.forEach(function (d) { bySlot[d.slot] = d; });
        els.forEach(function (el) {
          var d = bySlot[el.getAttribute("data-omotenashi-slot")];
          if (d) { render(el, d.content || {}); attach(el, d); }
        });
        show(els);
        emit("decide", body);
        return body;
      })
      .catch(function (err) {
        clearTimeout(giveUp);
        if (!done) { show(els); emit("decide", { error: String(err) }); }
        return null;
      });
  }

  function device() {
    return cfg.device || (/Mobi|Android|iPhone/i.test(navigator.userAgent) ? "mobile" : "desktop");
  }

  /* --- recommendations ---------------------------------------------------------- */

  function recommend(opts) {
    opts = opts || {};
    var el = opts.element || document.querySelector("[data-omotenashi-recommendations]");
    if (!el || !consentState().personalization) { return Promise.resolve(null); }
    var q = "?visitor_id=" + encodeURIComponent(visitorId()) + "&n=" + (opts.n || 8);
    if (opts.category) { q += "&category=" + encodeURIComponent(opts.category); }
    return request("GET", "/v1/recommendations" + q).then(function (body) {
      var tpl = el.querySelector("template"), list = el.querySelector("[data-omotenashi-list]") || el;
      Array.prototype.slice.call(list.querySelectorAll("[data-omotenashi-item]")).forEach(function (n) {
        n.parentNode.removeChild(n);
      });
      body.items.forEach(function (item) {
        var node = opts.render ? opts.render(item) : tpl && tpl.content.firstElementChild.cloneNode(true);
        if (!node) { return; }
        if (!opts.render) { render(node, item); }
        node.setAttribute("data-omotenashi-item", item.item_id);
        node.addEventListener("click", function () {
          track("click", null, { token: body.token, item_id: item.item_id }); flush(true);
        });
        list.appendChild(node);
      });
      el.setAttribute("data-omotenashi-token", body.token);
      emit("recommend", body);
      return body;
    }).catch(function (err) { emit("recommend", { error: String(err) }); return null; });
  }

  /* --- public API --------------------------------------------------------------- */

  window.Omotenashi = {
    init: function (options) {
      cfg = Object.assign({ consentMode: "opt_out" }, options || {});
      cfg.endpoint = (cfg.endpoint || "").replace(/\/$/, "");
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "hidden") { flush(true); }
      });
      window.addEventListener("pagehide", function () { flush(true); });
      return cfg.autoDecide === false ? Promise.resolve(null) : decide();
    },
    decide: decide,
    recommend: recommend,
    track: function (type, properties, extra) { track(type, properties, extra); },
    identify: function (customerId, traits) {
      track("identify", { customer_id: String(customerId), traits: traits || {} });
      flush();
    },
    consent: function (choice) {
      var c = consentState();
      var p = choice.personalization != null ? !!choice.personalization : c.personalization;
      var a = choice.analytics != null ? !!choice.analytics : c.analytics;
      var id = cookie(VID);
      cookie(CONSENT, "p" + (p ? 1 : 0) + "a" + (a ? 1 : 0), YEAR);
      if (!a) { queue = []; }
      var target = id || ((p || a) ? visitorId() : null);
      var sent = target ? request("PUT", "/v1/visitors/" + encodeURIComponent(target) + "/consent",
        { personalization: p, analytics: a }) : Promise.resolve(null);
      if (!p && !a) { cookie(VID, "", 0); }
      return sent.catch(function () { return null; });
    },
    consentState: consentState,
    visitorId: visitorId,
    flush: function () { flush(); },
    on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); }
  };
})(window, document);
