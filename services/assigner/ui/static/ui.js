/* stableseg explorer: draws the pages' Plotly figures, keeps the changes table live, sends the promote form.
   Loaded after the vendored plotly.js (both deferred); no network beyond this server. */
(function () {
  "use strict";

  function drawCharts() {
    document.querySelectorAll("figure.chart[data-figure]").forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      var config = { responsive: true, displaylogo: false, displayModeBar: window.innerWidth >= 600 ? "hover" : false };
      Plotly.newPlot(el, spec.data, spec.layout, config).then(function () {
        el.dataset.rendered = "true";
      });
    });
  }

  function cell(row, text, href) {
    var td = row.insertCell();
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function segmentCell(row, id) {
    return id ? cell(row, id, "/ui/segments/" + encodeURIComponent(id)) : cell(row, "–");
  }

  function prependChange(body, c) {
    var row = body.insertRow(0);
    row.className = "fresh";
    cell(row, c.at.replace("T", " ").slice(0, 19) + " UTC");
    cell(row, c.shop_id, "/ui/retailers/" + encodeURIComponent(c.shop_id));
    segmentCell(row, c.from_segment);
    segmentCell(row, c.to_segment);
    cell(row, c.status);
    cell(row, c.strength === null ? "–" : c.strength.toFixed(3)).className = "n";
    cell(row, "v" + c.model_version);
    cell(row, c.reason || "–");
  }

  function liveChanges() {
    var live = document.getElementById("live");
    var table = document.getElementById("changes");
    if (!live || !table) return;
    var body = table.tBodies[0];
    var last = Number(live.dataset.last || 0);
    function poll() {
      fetch(live.dataset.feed + "&after=" + last, { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (feed) {
          if (!feed) { live.textContent = "live · server busy, retrying"; return; }
          var empty = body.querySelector("tr.empty");
          if (empty && feed.changes.length) empty.remove();
          feed.changes.slice().reverse().forEach(function (c) { prependChange(body, c); });
          while (body.rows.length > 200) body.deleteRow(-1);
          last = Math.max(last, feed.last_id);
          live.textContent = "live · checked " + new Date().toLocaleTimeString() + " · " + feed.changes.length + " new";
        })
        .catch(function () { live.textContent = "live · connection lost, retrying"; });
    }
    setInterval(poll, 5000);
  }

  function promoteForm() {
    var form = document.getElementById("promote");
    if (!form) return;
    var out = document.getElementById("promote-result");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var version = form.elements.version.value;
      out.textContent = "promoting v" + version + " …";
      fetch(form.dataset.endpoint.replace("{version}", version), {
        method: "POST", headers: { Authorization: "Bearer " + form.elements.token.value }
      }).then(function (r) {
        return r.json().then(function (body) {
          out.textContent = r.ok ? "v" + body.version + " serves now (" + body.changes + " changes)" : "refused: " + body.detail;
        });
      }).catch(function (err) { out.textContent = "failed: " + err; });
    });
  }

  drawCharts();
  liveChanges();
  promoteForm();
})();
