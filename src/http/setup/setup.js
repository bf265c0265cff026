// The setup page's connection check: asks the server every few seconds which requests
// came with the link's token and shows them. Values are set as text, never as HTML.
"use strict";
(function () {
  var section = document.getElementById("connection");
  if (!section) { return; }
  var url = section.getAttribute("data-check-url");
  var words = {
    connected: "Connected: your identity provider's requests arrive and succeed.",
    failing: "Requests arrive but fail: see the errors below.",
    waiting: "Waiting for the first request from your identity provider…"
  };
  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }
  function show(check) {
    section.setAttribute("data-state", check.state);
    document.getElementById("check-state").textContent = words[check.state] || words.waiting;
    var body = document.querySelector("#check-requests tbody");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    check.requests.forEach(function (r) {
      var row = document.createElement("tr");
      cell(row, r.at);
      cell(row, r.method + " " + r.target);
      cell(row, String(r.status));
      cell(row, [r.scimType || "", r.detail || ""].join(" ").trim());
      body.appendChild(row);
    });
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(show)
      .catch(function () { /* the next poll tries again */ })
      .then(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
  document.querySelectorAll("input[readonly]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
})();
