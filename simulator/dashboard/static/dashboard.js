// bulksim dashboard: fills and refreshes the server-rendered page, and drives the control
// plane's buttons. No dependencies; the control token lives in this tab's sessionStorage only.
(function () {
  "use strict";
  var body = document.body;
  var root = body.dataset.root || "";
  // The control plane of the sandbox shown: /_sim, or /_sim/sandboxes/<id>.
  var control = body.dataset.control || "/_sim";
  var TOKEN_KEY = "bulksim-control-token";
  var last = parseInt(body.dataset.last || "0", 10);
  var filled = body.dataset.locked !== "yes";
  var rows = parseInt(body.dataset.rows || "100", 10);
  var timer = null;

  function $(selector) { return document.querySelector(selector); }
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function call(method, path, payload) {
    var headers = { "Accept": "application/json" };
    if (token()) { headers["X-Bulksim-Token"] = token(); }
    var init = { method: method, headers: headers, cache: "no-store" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(root + path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401) { askToken("That token was refused."); }
        if (!response.ok) { throw new Error(data.error || ("HTTP " + response.status)); }
        return data;
      });
    });
  }

  function say(id, text, bad) {
    var el = document.getElementById(id);
    if (!el) { return; }
    el.textContent = text;
    el.classList.toggle("error", !!bad);
    el.hidden = false;
  }

  function askToken(message) {
    var section = $("#token");
    if (!section) { return; }
    section.hidden = false;
    if (message) { say("token-message", message, true); }
  }

  function liveQuery() {
    var params = new URLSearchParams();
    if (body.dataset.sandbox && body.dataset.sandbox !== "default") { params.set("sandbox", body.dataset.sandbox); }
    if (filled) { params.set("since", String(last)); }
    if (body.dataset.provider) { params.set("provider", body.dataset.provider); }
    if (body.dataset.operation) { params.set("operation", body.dataset.operation); }
    params.set("rows", String(rows));
    // The rows shown that the server has not checked against the spec yet: live checks them.
    var unchecked = all("#journal-rows li.entry.unchecked").map(function (li) { return li.dataset.seq; });
    if (filled && unchecked.length) { params.set("check", unchecked.slice(0, 1000).join(",")); }
    return "/_sim/ui/live?" + params.toString();
  }

  // One poll at a time: a poll asked for while one is under way runs once after it, so two
  // answers holding the same journal rows never both reach the list.
  var inFlight = null;
  var again = false;

  function refresh() {
    if (inFlight) { again = true; return inFlight; }
    inFlight = poll().then(function () {
      inFlight = null;
      if (again) { again = false; return refresh(); }
    });
    return inFlight;
  }

  function poll() {
    return call("GET", liveQuery()).then(function (data) {
      Object.keys(data.sections).forEach(function (name) {
        var holder = document.querySelector('[data-section="' + name + '"]');
        if (holder) { holder.innerHTML = data.sections[name]; }
      });
      var list = $("#journal-rows");
      if (!filled) {
        list.innerHTML = data.rows;
        filled = true;
        var note = $("#locked-note");
        if (note) { note.hidden = true; }
      } else if (data.rows.trim()) {
        var empty = list.querySelector(".empty");
        if (empty) { empty.remove(); }
        list.insertAdjacentHTML("afterbegin", data.rows);
        while (list.children.length > rows) { list.lastElementChild.remove(); }
      }
      Object.keys(data.checked || {}).forEach(function (seq) {
        var old = list.querySelector('li.entry[data-seq="' + seq + '"]');
        if (!old) { return; }
        var open = old.querySelector("details[open]");
        old.insertAdjacentHTML("afterend", data.checked[seq]);
        old.remove();
        var now = list.querySelector('li.entry[data-seq="' + seq + '"] details');
        if (open && now) { now.open = true; }
      });
      // The findings of the rows shown, judged again with the rows that came after them.
      Object.keys(data.findings || {}).forEach(function (seq) {
        var holder = list.querySelector('ul.findings[data-findings-for="' + seq + '"]');
        if (!holder) { return; }
        holder.textContent = "";
        data.findings[seq].forEach(function (finding) {
          var item = document.createElement("li");
          var name = document.createElement("b");
          name.className = "check";
          name.textContent = finding.check;
          item.appendChild(name);
          item.appendChild(document.createTextNode(" " + finding.message));
          holder.appendChild(item);
        });
        holder.closest("li.entry").classList.toggle("finding", data.findings[seq].length > 0);
      });
      last = data.last;
      showButtons();
      $("#live").classList.remove("stale");
    }).catch(function () { $("#live").classList.add("stale"); });
  }

  function schedule() {
    var every = parseInt(body.dataset.pollMs || "1000", 10);
    if (timer) { clearInterval(timer); }
    timer = setInterval(refresh, every);
  }

  function showButtons() {
    all(".js-only").forEach(function (el) { if (el.id !== "token") { el.hidden = false; } });
  }

  // -- clock ---------------------------------------------------------------------------------
  all("[data-advance]").forEach(function (button) {
    button.addEventListener("click", function () {
      call("POST", control + "/clock/advance", { seconds: Number(button.dataset.advance) })
        .then(function (clock) { say("clock-message", "now " + clock.now); return refresh(); })
        .catch(function (error) { say("clock-message", error.message, true); });
    });
  });
  // The soonest ready_at of an unfinished batch or process, as the resources section last
  // rendered it (to the microsecond): the clock is set there, so that batch is then done.
  $("#advance-due").addEventListener("click", function () {
    var due = $("#next-due");
    if (!due || !due.dataset.due) { say("clock-message", "nothing is due"); return; }
    call("POST", control + "/clock/set", { now: due.dataset.due })
      .then(function (clock) { say("clock-message", "now " + clock.now); return refresh(); })
      .catch(function (error) { say("clock-message", error.message, true); });
  });
  $("#clock-set").addEventListener("submit", function (event) {
    event.preventDefault();
    var now = event.target.elements.now.value;
    call("POST", control + "/clock/set", { now: now })
      .then(function (clock) { say("clock-message", "now " + clock.now); return refresh(); })
      .catch(function (error) { say("clock-message", error.message, true); });
  });

  // -- each sandbox's own clock, from its row (the sections are re-rendered: delegated) -------
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-row-advance], [data-row-due]") : null;
    if (!button) { return; }
    var row = button.closest("tr.sandbox");
    var moved;
    if (button.hasAttribute("data-row-due")) {
      if (!row.dataset.due) { say("sandbox-message", row.dataset.id + ": nothing is due"); return; }
      moved = call("POST", row.dataset.control + "/clock/set", { now: row.dataset.due });
    } else {
      moved = call("POST", row.dataset.control + "/clock/advance", { seconds: Number(button.dataset.rowAdvance) });
    }
    moved.then(function (clock) { say("sandbox-message", row.dataset.id + " now " + clock.now); return refresh(); })
      .catch(function (error) { say("sandbox-message", error.message, true); });
  });

  // -- webhooks: send an event again now ------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.resend") : null;
    if (!button) { return; }
    var path = control + "/webhooks/" + encodeURIComponent(button.dataset.event) + "/resend";
    call("POST", path)
      .then(function (done) { say("webhook-message", "resent " + done.resent); return refresh(); })
      .catch(function (error) { say("webhook-message", error.message, true); });
  });

  // -- faults --------------------------------------------------------------------------------
  var faultForm = $("#fault-form");
  function fitFaultForm() {
    var provider = faultForm.elements.provider.value;
    var kind = faultForm.elements.kind.value;
    ["operation", "error"].forEach(function (name) {
      var select = faultForm.elements[name];
      Array.prototype.forEach.call(select.options, function (option) {
        option.hidden = !!option.dataset.provider && option.dataset.provider !== provider;
      });
      if (select.selectedOptions[0] && select.selectedOptions[0].hidden) {
        var first = Array.prototype.find.call(select.options, function (o) { return !o.hidden; });
        select.value = first ? first.value : "";
      }
    });
    all("[data-for-kind]").forEach(function (label) {
      label.hidden = label.dataset.forKind !== kind;
    });
  }
  faultForm.elements.provider.addEventListener("change", fitFaultForm);
  faultForm.elements.kind.addEventListener("change", fitFaultForm);
  fitFaultForm();
  faultForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var f = faultForm.elements;
    var spec = { provider: f.provider.value, operation: f.operation.value, kind: f.kind.value,
                 count: Number(f.count.value) };
    if (spec.kind === "error") { spec.error = f.error.value; }
    if (spec.kind === "status") { spec.status = Number(f.status.value); }
    if (spec.kind === "latency") { spec.latency_ms = Number(f.latency_ms.value); }
    if (spec.kind === "rate_limit") { spec.retry_after = Number(f.retry_after.value); }
    call("POST", control + "/faults", spec)
      .then(function (fault) { say("fault-message", "armed fault #" + fault.id); return refresh(); })
      .catch(function (error) { say("fault-message", error.message, true); });
  });
  $("#faults-clear").addEventListener("click", function () {
    call("DELETE", control + "/faults")
      .then(function (done) { say("fault-message", "cleared " + done.cleared); return refresh(); })
      .catch(function (error) { say("fault-message", error.message, true); });
  });

  // -- credentials: the value is fetched when copied, never kept in the page ----------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.copy") : null;
    if (!button) { return; }
    call("GET", control + "/providers").then(function (data) {
      var provider = data.providers.find(function (p) { return p.name === button.dataset.provider; });
      var value = button.dataset.path.split(".").reduce(function (at, key) {
        return at == null ? at : at[key];
      }, provider && provider.credentials);
      return navigator.clipboard.writeText(String(value));
    }).then(function () { say("copy-status", "copied " + button.dataset.provider + " " + button.dataset.path); })
      .catch(function (error) { say("copy-status", "could not copy: " + error.message, true); });
  });

  // -- the control token ---------------------------------------------------------------------
  var tokenForm = $("#token-form");
  if (tokenForm) {
    tokenForm.addEventListener("submit", function (event) {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("#token-input").value);
      $("#token-input").value = "";
      say("token-message", "Token kept in this tab.");
      refresh().then(schedule);
    });
    $("#token-forget").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      say("token-message", "Token forgotten.");
    });
  }

  if (!filled && !token()) {
    askToken();
  } else {
    if (filled) { showButtons(); }
    refresh().then(schedule);
  }
  $("#live").hidden = false;
  $("#no-script").hidden = true;
})();
