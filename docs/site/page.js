// paygate docs page: language switch, code tabs and the test payment page.
// Everything is inline; Stripe.js is loaded only to pay with the Payment
// Element in Stripe's test mode.
(function () {
  "use strict";
  var html = document.documentElement, body = document.body;

  // Language: ?lang= wins, then the last choice in this browser.
  function setLang(l) {
    html.setAttribute("data-lang", l);
    html.setAttribute("lang", l);
    try { localStorage.setItem("paygate-docs-lang", l); } catch (e) {}
  }
  var qs = new URLSearchParams(location.search);
  if (!qs.get("lang")) {
    var saved = null;
    try { saved = localStorage.getItem("paygate-docs-lang"); } catch (e) {}
    if (saved === "th" || saved === "en") setLang(saved);
  }
  document.querySelectorAll("[data-set-lang]").forEach(function (b) {
    b.addEventListener("click", function () { setLang(b.getAttribute("data-set-lang")); });
  });

  // Code tabs.
  document.querySelectorAll(".tabs").forEach(function (tabs) {
    var section = tabs.parentElement;
    tabs.querySelectorAll("[data-tab]").forEach(function (b) {
      b.addEventListener("click", function () {
        tabs.querySelectorAll("[data-tab]").forEach(function (o) { o.setAttribute("aria-selected", o === b ? "true" : "false"); });
        section.querySelectorAll("[data-panel]").forEach(function (p) { p.hidden = p.getAttribute("data-panel") !== b.getAttribute("data-tab"); });
      });
    });
  });

  // Test payment.
  var form = document.getElementById("tp-form");
  if (!form) return; // a live key, or no key: not offered
  var mode = body.getAttribute("data-mode");
  var stripeBase = body.getAttribute("data-stripe-base");
  var $ = function (id) { return document.getElementById(id); };
  var keyInput = $("tp-key");
  // The API is beside this page: Handler may be mounted under a prefix.
  var apiBase = location.pathname.replace(/\/docs\/?$/, "");
  var state = { paymentId: "", timer: 0 };
  try {
    if (keyInput) keyInput.value = sessionStorage.getItem("paygate-docs-key") || "";
    // The payment id (not a secret) is shared by the tabs of this browser, so
    // a payment page opened in a new tab returns to a page that knows it.
    state.paymentId = localStorage.getItem("paygate-docs-payment") || "";
  } catch (e) {}

  function t(th, en) { return html.getAttribute("data-lang") === "en" ? en : th; }
  function showError(msg) { var e = $("tp-error"); e.textContent = msg; e.hidden = !msg; }

  function api(method, path, payload) {
    var headers = { "Accept": "application/json" };
    if (keyInput && keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value.trim();
    var init = { method: method, headers: headers };
    if (payload) {
      headers["Content-Type"] = "application/json";
      headers["Idempotency-Key"] = "docs-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
      init.body = JSON.stringify(payload);
    }
    return fetch(apiBase + path, init).then(function (r) {
      return r.json().then(function (env) {
        if (!env.status) {
          var p = env.error && env.error.param ? " (" + env.error.param + ")" : "";
          throw new Error(env.code + " " + (env.error ? env.error.type : "") + ": " + env.message + p);
        }
        return env.data;
      });
    });
  }

  // money shows minor units in the currency's major unit (1234 usd → $12.34).
  function money(minor, currency) {
    try {
      var f = new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() });
      return f.format(minor / Math.pow(10, f.resolvedOptions().maximumFractionDigits));
    } catch (e) { return minor + " " + currency; }
  }

  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
  function fill(id, rows, cols) {
    var tb = $(id).querySelector("tbody");
    tb.textContent = "";
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      cols.forEach(function (c) { cell(tr, c(row)); });
      tb.appendChild(tr);
    });
    if (!rows.length) { var tr = document.createElement("tr"); cell(tr, "—"); tb.appendChild(tr); }
  }

  function refresh() {
    if (!state.paymentId) return Promise.resolve();
    return Promise.all([
      api("GET", "/api/payments/" + encodeURIComponent(state.paymentId)),
      api("GET", "/api/webhooks/callbacks?paymentId=" + encodeURIComponent(state.paymentId))
    ]).then(function (res) {
      var p = res[0], cbs = res[1];
      $("tp-result").hidden = false;
      $("tp-payment-id").textContent = p.id;
      $("tp-status").textContent = p.status + " · " + money(p.amount, p.currency) + (p.amountRefunded ? " · refunded " + money(p.amountRefunded, p.currency) : "");
      $("tp-status").setAttribute("data-status", p.status);
      fill("tp-history", p.history || [], [
        function (h) { return h.eventType; },
        function (h) { return (h.fromStatus || "∅") + " → " + (h.toStatus || "∅"); },
        function (h) { return h.source; },
        function (h) { return h.createdAt; }]);
      fill("tp-callbacks", cbs.items || [], [
        function (c) { return c.attempt; }, function (c) { return c.success ? "✔" : "✘"; },
        function (c) { return c.statusCode; }, function (c) { return c.url; }, function (c) { return c.createdAt; }]);
      showError("");
    }).catch(function (e) { showError(e.message); });
  }

  function openLink(url) {
    $("tp-open").href = url;
    $("tp-open-wrap").hidden = false;
  }

  // Where a payment page sends the person back: this page, in the language
  // shown now.
  function returnURL() { return location.origin + location.pathname + "?paid=1&lang=" + html.getAttribute("data-lang") + "#test-payment"; }

  function mountElement(session) {
    var box = $("tp-element");
    box.textContent = "";
    if (mode === "sandbox") {
      // The sandbox's stand-in for the Payment Element.
      openLink(stripeBase + "/confirm?client_secret=" + encodeURIComponent(session.clientSecret) + "&return_url=" + encodeURIComponent(returnURL()));
      return;
    }
    if (!session.publishableKey) { showError(t("ยังไม่ได้ตั้ง STRIPE_PUBLISHABLE_KEY", "STRIPE_PUBLISHABLE_KEY is not configured")); return; }
    var s = document.createElement("script");
    s.src = "https://js.stripe.com/v3/";
    s.onerror = function () { showError(t("โหลด Stripe.js ไม่ได้ (ต้องต่ออินเทอร์เน็ต)", "Stripe.js could not be loaded (it needs the internet)")); };
    s.onload = function () {
      var stripe = window.Stripe(session.publishableKey);
      var elements = stripe.elements({ clientSecret: session.clientSecret });
      var mountPoint = document.createElement("div");
      box.appendChild(mountPoint);
      elements.create("payment").mount(mountPoint);
      var pay = document.createElement("button");
      pay.className = "btn"; pay.type = "button"; pay.textContent = t("ชำระเงิน", "Pay");
      pay.addEventListener("click", function () {
        pay.disabled = true;
        stripe.confirmPayment({ elements: elements, confirmParams: { return_url: returnURL() } }).then(function (r) {
          pay.disabled = false;
          if (r.error) showError(r.error.message);
        });
      });
      box.appendChild(pay);
    };
    document.head.appendChild(s);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    showError("");
    var method = form.querySelector("input[name=method]:checked").value;
    var amount = $("tp-amount").value.trim(), currency = $("tp-currency").value.trim().toLowerCase();
    var meta = { source: "paygate-docs" };
    try { if (keyInput) sessionStorage.setItem("paygate-docs-key", keyInput.value); } catch (e) {}
    var btn = $("tp-submit");
    btn.disabled = true;
    $("tp-open-wrap").hidden = true;
    $("tp-element").textContent = "";
    var done;
    if (method === "link") {
      done = api("POST", "/api/payments/generate-url", { amount: amount, currency: currency, productName: "Test payment", metadata: meta, successUrl: returnURL() })
        .then(function (p) { openLink(p.paymentUrl); return p.id; });
    } else if (method === "checkout") {
      done = api("POST", "/api/payments/checkout-session", { amount: amount, currency: currency, productName: "Test payment", metadata: meta, successUrl: returnURL(), cancelUrl: returnURL() })
        .then(function (c) { openLink(c.url); return c.paymentId; });
    } else {
      done = api("POST", "/api/payments/payment-intent", { amount: amount, currency: currency, description: "Test payment", metadata: meta })
        .then(function (pi) {
          return api("GET", "/api/payments/payment-intent/" + encodeURIComponent(pi.paymentIntentId) + "/session")
            .then(function (s) { mountElement(s); return pi.paymentId; });
        });
    }
    done.then(function (id) {
      state.paymentId = id;
      try { localStorage.setItem("paygate-docs-payment", id); } catch (e) {}
      return refresh();
    }).catch(function (e) { showError(e.message); }).then(function () {
      btn.disabled = false;
      clearInterval(state.timer);
      state.timer = setInterval(refresh, 3000);
    });
  });
  $("tp-refresh").addEventListener("click", refresh);
  if (state.paymentId && (!keyInput || keyInput.value)) {
    refresh();
    state.timer = setInterval(refresh, 3000);
  }
})();
