/* The demo shop: hash-routed pages on the demo catalogue, personalized by the
   Omotenashi snippet, with a visitor switcher and a panel showing each decision.
   Plain browser JavaScript, no dependencies; everything comes from this engine. */
(function () {
  "use strict";
  var DEVICE_KEY = "omo_demo_device", CART_KEY = "omo_demo_cart", YEAR = 31536000;
  var config = null, items = {}, decisions = {}, recs = null, decideStarted = 0;
  var ICONS = {
    sports: '<circle cx="32" cy="32" r="20"/><path d="M12 32h40M32 12c-8 6-8 34 0 40M32 12c8 6 8 34 0 40"/>',
    fashion: '<path d="M22 14l10 6 10-6 12 8-5 9-5-3v24H20V28l-5 3-5-9z"/>',
    electronics: '<rect x="14" y="16" width="36" height="24" rx="3"/><path d="M24 48h16M32 40v8"/>',
    home: '<path d="M10 32L32 13l22 19M17 27v24h30V27"/><path d="M28 51V39h8v12"/>',
    books: '<path d="M12 16h16a4 4 0 0 1 4 4v30a4 4 0 0 0-4-4H12zM52 16H36a4 4 0 0 0-4 4v30a4 4 0 0 1 4-4h16z"/>'
  };

  function $(id) { return document.getElementById(id); }

  /* An element with attributes and children (strings become text, never HTML). */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function money(v) { return "$" + Number(v).toFixed(2); }

  function setCookie(name, value, maxAge) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + maxAge +
      "; Path=/; SameSite=Lax";
  }

  function device() {
    return localStorage.getItem(DEVICE_KEY) ||
      (/Mobi|Android|iPhone/i.test(navigator.userAgent) ? "mobile" : "desktop");
  }

  function title(category) { return category.charAt(0).toUpperCase() + category.slice(1); }

  /* --- catalogue ------------------------------------------------------------------ */

  function art(category, big) {
    var box = el("div", { "class": "art cat-" + category + (big ? " big" : ""), "aria-hidden": "true" });
    box.innerHTML = '<svg viewBox="0 0 64 64">' + (ICONS[category] || "") + "</svg>";
    return box;
  }

  function card(item) {
    if (!item) { return null; }
    return el("a", { "class": "product", href: "#/p/" + item.item_id }, [
      art(item.category),
      el("span", { "class": "name" }, [item.title]),
      el("span", { "class": "price" }, [money(item.price)])
    ]);
  }

  function cartLines() {
    try { return JSON.parse(localStorage.getItem(CART_KEY) || "[]"); } catch (e) { return []; }
  }

  function saveCart(lines) {
    localStorage.setItem(CART_KEY, JSON.stringify(lines));
    $("cart-count").textContent = String(lines.reduce(function (n, l) { return n + l.qty; }, 0));
  }

  /* --- pages ------------------------------------------------------------------------ */

  function home(view) {
    view.appendChild($("home-view").content.cloneNode(true));
    var list = view.querySelector("[data-omotenashi-list]");
    config.catalogue.filter(function (i) { return i.tags.indexOf("new") >= 0; }).slice(0, 6)
      .forEach(function (i) { var c = card(i); c.classList.add("default"); list.appendChild(c); });
    var tiles = view.querySelector("#category-tiles");
    config.categories.forEach(function (c) {
      tiles.appendChild(el("a", { "class": "tile", href: "#/c/" + c }, [art(c), el("span", {}, [title(c)])]));
    });
    return { url: "#/" };
  }

  function listing(view, name) {
    var shown = config.catalogue.filter(function (i) {
      return name === "new" ? i.tags.indexOf("new") >= 0 : i.category === name;
    });
    view.appendChild(el("h1", {}, [name === "new" ? "New in" : title(name)]));
    var grid = el("div", { "class": "products grid" });
    shown.forEach(function (i) { grid.appendChild(card(i)); });
    view.appendChild(grid);
    return { url: "#/c/" + name, category: name === "new" ? null : name };
  }

  function product(view, id) {
    var item = items[id];
    if (!item) { return listing(view, "new"); }
    var add = el("button", { type: "button", id: "add-to-cart" }, ["Add to cart"]);
    add.addEventListener("click", function () {
      var lines = cartLines(), line = lines.filter(function (l) { return l.item_id === id; })[0];
      if (line) { line.qty += 1; } else { lines.push({ item_id: id, qty: 1 }); }
      saveCart(lines);
      Omotenashi.track("add_to_cart", { price: item.price, qty: 1, category: item.category },
        { item_id: id });
      add.textContent = "Added";
    });
    view.appendChild(el("div", { "class": "detail" }, [
      art(item.category, true),
      el("div", {}, [
        el("p", { "class": "crumb" }, [title(item.category)]),
        el("h1", {}, [item.title]),
        el("p", { "class": "price big" }, [money(item.price)]),
        el("p", {}, [item.available ? "In stock, ships tomorrow." : "Back soon."]),
        add
      ])
    ]));
    return { url: "#/p/" + id, category: item.category, item_id: id };
  }

  function cart(view) {
    view.appendChild($("cart-view").content.cloneNode(true));
    var lines = cartLines(), list = view.querySelector("#cart-lines"), total = 0;
    lines.forEach(function (l) {
      var item = items[l.item_id];
      if (!item) { return; }
      total += item.price * l.qty;
      list.appendChild(el("li", {}, [art(item.category), el("span", {}, [item.title + " \u00d7 " + l.qty]),
        el("span", { "class": "price" }, [money(item.price * l.qty)])]));
    });
    if (!lines.length) { list.appendChild(el("li", { "class": "empty" }, ["Nothing here yet."])); }
    view.querySelector("#cart-total").textContent = money(total);
    var buy = view.querySelector("#purchase");
    buy.disabled = !lines.length;
    buy.addEventListener("click", function () {
      Omotenashi.track("purchase", {
        order_id: "demo-" + Date.now().toString(36),
        currency: "USD",
        items: lines.map(function (l) {
          var i = items[l.item_id];
          return { item_id: l.item_id, price: i.price, qty: l.qty, category: i.category };
        })
      }, { value: Math.round(total * 100) / 100 });
      Omotenashi.flush();
      saveCart([]);
      view.textContent = "";
      view.appendChild(el("div", { "class": "message" }, [el("h1", {}, ["Thank you!"]),
        el("p", {}, ["Your order is on its way (in the engine's event log, at least)."])]));
    });
    return { url: "#/cart" };
  }

  function appPage(view) {
    view.appendChild(el("div", { "class": "message" }, [el("h1", {}, ["Get the app"]),
      el("p", {}, ["Scan the code in the store, or keep shopping here: this is a demo."])]));
    return { url: "#/app" };
  }

  /* Draw the page for the current hash, then ask the engine for its blocks. */
  function route() {
    var parts = location.hash.replace(/^#\/?/, "").split("/"), view = $("view"), page;
    view.textContent = "";
    decisions = {};
    recs = null;
    if (parts[0] === "c" && parts[1]) { page = listing(view, parts[1]); }
    else if (parts[0] === "p" && parts[1]) { page = product(view, parts[1]); }
    else if (parts[0] === "cart") { page = cart(view); }
    else if (parts[0] === "app") { page = appPage(view); }
    else { page = home(view); }
    window.scrollTo(0, 0);
    var status = $("dbg-status");
    status.setAttribute("data-outcome", "pending");
    status.removeAttribute("data-ms");
    status.textContent = "asking...";
    decideStarted = performance.now();
    Omotenashi.decide({ page: page.url }).then(function (body) {
      if (body === null && !view.querySelector("[data-omotenashi-slot]")) {
        settle("none", "no personalized blocks on this page");
      }
    });
    var strip = view.querySelector("[data-omotenashi-recommendations]");
    if (strip) {
      Omotenashi.recommend({ n: 6, element: strip, render: function (i) { return card(items[i.item_id]); } });
    }
    Omotenashi.track("page_view", { url: location.pathname + page.url, category: page.category || undefined },
      { item_id: page.item_id });
    debug();
  }

  function settle(outcome, text) {
    var status = $("dbg-status");
    status.setAttribute("data-outcome", outcome);
    status.setAttribute("data-ms", String(Math.round(performance.now() - decideStarted)));
    status.textContent = text;
  }

  function onDecide(body) {
    var wait = config.antiFlickerMs;
    if (body.decisions) {
      body.decisions.forEach(function (d) { decisions[d.slot] = d; });
      settle("answered", "answered in " + Math.round(performance.now() - decideStarted) + " ms");
      $("dbg-segments").textContent = body.segments.length ? body.segments.join(", ") : "none";
    } else if (body.timedOut) {
      settle("timedOut", "no answer within " + wait + " ms: page defaults shown");
    } else if (body.skipped) {
      settle("skipped", "not asked (no consent): page defaults shown");
    } else {
      settle("error", "engine unreachable (" + body.error + "): page defaults shown");
    }
    var hero = decisions.home_hero, cta = document.querySelector(".hero-cta");
    if (hero && cta) {
      var target = String(hero.content.cta || "").replace(/^\//, "");
      cta.textContent = target === "app" ? "Get the app" : target === "new" ? "See what's new"
        : config.categories.indexOf(target) >= 0 ? "Shop " + target : "Shop now";
    }
    debug();
  }

  function onRecommend(body) {
    var strip = document.querySelector("[data-omotenashi-recommendations]");
    recs = body;
    if (strip && body.items && body.items.length) {
      Array.prototype.forEach.call(strip.querySelectorAll(".default"), function (n) { n.remove(); });
      strip.querySelector(".strip-title").textContent =
        body.source === "trained" || body.source === "fold_in" ? "Recommended for you" : "Popular right now";
    }
    debug();
  }

  /* Leave the hero to where its variant points (the snippet has already sent the click). */
  function onClick(e) {
    var hero = e.target.closest && e.target.closest("[data-omotenashi-slot=home_hero]");
    if (!hero) { return; }
    var d = decisions.home_hero, target = String(d ? d.content.cta : "/new").replace(/^\//, "");
    location.hash = target === "app" ? "#/app" : "#/c/" + (target || "new");
  }

  /* --- the debug panel ------------------------------------------------------------------ */

  function row(name, value, attrs) {
    return [el("dt", {}, [name]), el("dd", attrs || {}, [value == null ? "-" : String(value)])];
  }

  function block(slot, fields, token) {
    var dl = el("dl", {}), section = el("section", { "class": "block", "data-slot": slot }, [
      el("h3", {}, [slot]), dl]);
    fields.forEach(function (f) { row(f[0], f[1], f[2]).forEach(function (n) { dl.appendChild(n); }); });
    if (token) {
      section.setAttribute("data-token", token);
      row("token", token.slice(0, 10) + "\u2026" + token.slice(-8), { title: token, "class": "token" })
        .forEach(function (n) { dl.appendChild(n); });
    }
    return section;
  }

  function debug() {
    var c = Omotenashi.consentState(), blocks = $("dbg-blocks");
    var personal = c.personalization || c.analytics;
    $("dbg-visitor").textContent = personal ? Omotenashi.visitorId() : "anonymous (nothing stored)";
    $("dbg-consent").textContent = "personalization " + (c.personalization ? "yes" : "no") +
      ", analytics " + (c.analytics ? "yes" : "no") + (c.chosen ? "" : " (site default)");
    $("dbg-device").textContent = device() + (localStorage.getItem(DEVICE_KEY) ? " (switcher)" : " (browser)");
    if (!c.personalization) { $("dbg-segments").textContent = "-"; }
    blocks.textContent = "";
    Array.prototype.forEach.call(document.querySelectorAll("#view [data-omotenashi-slot]"), function (s) {
      var slot = s.getAttribute("data-omotenashi-slot"), d = decisions[slot];
      blocks.appendChild(d ? block(slot, [["variant", d.variant, { "class": "variant" }], ["policy", d.policy],
        ["experiment", d.experiment ? d.experiment + " / " + d.arm : "none"]], d.token)
        : block(slot, [["variant", "page default", { "class": "variant" }], ["policy", "-"]]));
    });
    if (document.querySelector("#view [data-omotenashi-recommendations]")) {
      blocks.appendChild(recs && recs.items ? block("recommendations", [["source", recs.source],
        ["policy", recs.policy], ["model", recs.model_version],
        ["experiment", recs.experiment ? recs.experiment + " / " + recs.arm : "none"]], recs.token)
        : block("recommendations", [["source", recs && recs.error ? "unavailable" : "page default"]]));
    }
  }

  /* --- visitor switcher and consent banner --------------------------------------------- */

  function switcher() {
    var select = $("visitor"), current = document.cookie.match(/(?:^|; )omo_vid=([^;]*)/);
    var id = current ? decodeURIComponent(current[1]) : "", preset = null;
    config.visitors.forEach(function (v) {
      select.appendChild(el("option", { value: v.id }, [v.label]));
      if (v.id === id) { preset = v; }
    });
    select.value = preset ? preset.id : "";
    $("visitor-note").textContent = preset ? preset.shows : "a visitor the engine has not met before";
    $("device").value = localStorage.getItem(DEVICE_KEY) || "";
    select.addEventListener("change", function () {
      location.href = location.pathname + "?visitor=" + encodeURIComponent(select.value || "new");
    });
    $("device").addEventListener("change", function () {
      if ($("device").value) { localStorage.setItem(DEVICE_KEY, $("device").value); }
      else { localStorage.removeItem(DEVICE_KEY); }
      location.reload();
    });
  }

  /* Become the visitor the switcher chose (?visitor=): on the new page, before the
     snippet starts, so the page left behind sends its own events as its own visitor. */
  function becomeChosenVisitor() {
    var chosen = new URLSearchParams(location.search).get("visitor");
    if (chosen === null) { return; }
    if (config.visitors.some(function (v) { return v.id === chosen; })) {
      setCookie("omo_vid", chosen, YEAR);  /* a returning customer, who agreed before */
      setCookie("omo_consent", "p1a1", YEAR);
    } else {
      setCookie("omo_vid", "", 0);
      setCookie("omo_consent", "", 0);
    }
    history.replaceState(null, "", location.pathname + "#/");
  }

  function consentBanner() {
    var banner = $("consent");
    banner.hidden = Omotenashi.consentState().chosen;
    function choose(yes) {
      return function () {
        Omotenashi.consent({ personalization: yes, analytics: yes }).then(function () {
          banner.hidden = true;
          if (yes) { debug(); } else { route(); }
        });
      };
    }
    $("consent-accept").addEventListener("click", choose(true));
    $("consent-decline").addEventListener("click", choose(false));
  }

  function start(cfg) {
    config = cfg;
    cfg.catalogue.forEach(function (i) { items[i.item_id] = i; });
    cfg.categories.forEach(function (c) { $("nav").appendChild(el("a", { href: "#/c/" + c }, [title(c)])); });
    becomeChosenVisitor();
    Omotenashi.on("decide", onDecide);
    Omotenashi.on("recommend", onRecommend);
    Omotenashi.init({ endpoint: cfg.endpoint, siteKey: cfg.siteKey, consentMode: cfg.consentMode,
      antiFlickerMs: cfg.antiFlickerMs, device: device(), autoDecide: false });
    switcher();
    consentBanner();
    saveCart(cartLines());
    $("view").addEventListener("click", onClick);
    $("view").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.matches("[data-omotenashi-slot=home_hero]")) { e.target.click(); }
    });
    window.addEventListener("hashchange", route);
    route();
  }

  fetch("/demo/config.json").then(function (r) { return r.json(); }).then(start, function (err) {
    $("view").textContent = "The shop could not load its configuration: " + err;
  });
})();
