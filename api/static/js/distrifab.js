/* distrifab pages: maps (Leaflet), plots (Chart.js) and the delivery-point picker.
   Everything here improves a page that already works without it: tables list what
   the maps and plots draw, and forms accept typed coordinates. */
(function () {
  "use strict";

  var lang = document.documentElement.lang || "fr";

  function fetchJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
        return response.json();
      });
  }

  /* ---- Maps ----------------------------------------------------------------- */

  var LOAD_COLOURS = { low: "#1e6b2f", medium: "#b35900", high: "#a4161a", none: "#5a5a5a" };

  function goOffline(map, layer, element) {
    if (element.classList.contains("offline")) { return; }
    map.removeLayer(layer);
    element.classList.add("offline");
    var note = document.getElementById(element.dataset.note);
    if (note) { note.textContent = element.dataset.offlineText; }
  }

  function addTiles(map, element) {
    var layer = L.tileLayer(element.dataset.tiles, {
      maxZoom: 18,
      attribution: element.dataset.attribution || ""
    });
    var loaded = 0;
    layer.on("tileload", function () { loaded += 1; });
    // Sites may be offline: at the first tile that fails before any loaded, drop the
    // tiles and keep the markers on a plain background, with a note saying why.
    layer.on("tileerror", function () {
      if (loaded === 0) { goOffline(map, layer, element); }
    });
    layer.addTo(map);
    // A tile server that never answers raises no error: give up after a while.
    window.setTimeout(function () {
      if (loaded === 0) { goOffline(map, layer, element); }
    }, 8000);
  }

  function siteRadius(printers) { return 6 + 4 * Math.sqrt(Math.max(printers, 0)); }

  function drawNetwork(map, network, picker) {
    var bounds = [];
    (network.sites || []).forEach(function (site) {
      var marker = L.circleMarker([site.lat, site.lon], {
        radius: siteRadius(site.printers),
        color: "#1b1b1b",
        weight: 1,
        fillColor: LOAD_COLOURS[site.load_band] || LOAD_COLOURS.none,
        fillOpacity: 0.85
      }).addTo(map);
      marker.bindTooltip(site.name + " · " + site.caption);
      bounds.push([site.lat, site.lon]);
    });
    (network.points || []).forEach(function (point) {
      var marker = L.marker([point.lat, point.lon], { title: point.name, alt: point.name, keyboard: true }).addTo(map);
      marker.bindTooltip(point.name + (point.caption ? " · " + point.caption : ""));
      if (picker) { marker.on("click", function () { picker.choosePoint(point); }); }
      bounds.push([point.lat, point.lon]);
    });
    if (bounds.length > 1) {
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 12 });
    } else if (bounds.length === 1) {
      map.setView(bounds[0], 11);
    }
  }

  function makePicker(element, map) {
    var form = element.closest("form");
    if (!form) { return null; }
    var lat = form.querySelector("[name=point_lat]");
    var lon = form.querySelector("[name=point_lon]");
    var select = form.querySelector("[name=delivery_point_id]");
    var newChoice = form.querySelector("[name=point_choice][value=new]");
    var existingChoice = form.querySelector("[name=point_choice][value=existing]");
    var pin = null;

    function place(latValue, lonValue) {
      if (pin) { map.removeLayer(pin); }
      pin = L.circleMarker([latValue, lonValue], { radius: 9, color: "#0b5394", weight: 3, fillOpacity: 0.2 }).addTo(map);
    }
    map.on("click", function (event) {
      lat.value = event.latlng.lat.toFixed(5);
      lon.value = event.latlng.lng.toFixed(5);
      if (newChoice) { newChoice.checked = true; }
      place(event.latlng.lat, event.latlng.lng);
    });
    if (lat && lon && lat.value && lon.value) { place(parseFloat(lat.value), parseFloat(lon.value)); }
    var locate = form.querySelector("[data-locate]");
    if (locate) {
      locate.addEventListener("click", function () {
        var address = form.querySelector("[name=point_address]");
        var status = document.getElementById(locate.dataset.status);
        fetchJson(locate.dataset.locate + "?q=" + encodeURIComponent(address.value)).then(function (found) {
          if (found.lat === null) {
            status.textContent = found.message;
            return;
          }
          lat.value = found.lat.toFixed(5);
          lon.value = found.lon.toFixed(5);
          status.textContent = found.message;
          if (newChoice) { newChoice.checked = true; }
          place(found.lat, found.lon);
          map.setView([found.lat, found.lon], 12);
        });
      });
    }
    return {
      choosePoint: function (point) {
        if (select) { select.value = point.id; }
        if (existingChoice) { existingChoice.checked = true; }
      }
    };
  }

  function initMap(element) {
    if (typeof L === "undefined" || element.dataset.ready) { return; }
    element.dataset.ready = "1";
    var map = L.map(element, { scrollWheelZoom: false }).setView([49.42, 2.95], 10);
    addTiles(map, element);
    var picker = element.hasAttribute("data-picker") ? makePicker(element, map) : null;
    fetchJson(element.dataset.src).then(function (network) { drawNetwork(map, network, picker); });
  }

  /* ---- Plots ---------------------------------------------------------------- */

  var HOUR_MS = 3600 * 1000;

  /* Labels as precise as the span shown needs: seconds over an hour, days over a week. */
  function formatTime(value, spanMs) {
    var options = { hour: "2-digit", minute: "2-digit" };
    if (spanMs < 2 * HOUR_MS) { options.second = "2-digit"; }
    if (spanMs > 36 * HOUR_MS) { options.month = "short"; options.day = "numeric"; }
    if (spanMs > 14 * 24 * HOUR_MS) { delete options.hour; delete options.minute; }
    return new Intl.DateTimeFormat(lang, options).format(new Date(value));
  }

  function chartConfig(spec) {
    var datasets = spec.datasets.map(function (set) {
      return {
        label: set.label,
        data: set.data,
        backgroundColor: set.color,
        borderColor: set.color,
        stack: set.stack,
        stepped: spec.kind === "line" ? "before" : false,
        fill: false,
        pointRadius: spec.kind === "line" ? 2 : undefined,
        borderDash: set.dashed ? [6, 4] : undefined
      };
    });
    var x = { title: { display: !!spec.x_label, text: spec.x_label }, stacked: !!spec.stacked };
    if (spec.x_time) {
      x.type = "linear";
      x.ticks = {
        callback: function (value) { return formatTime(value, this.max - this.min); },
        maxTicksLimit: 6
      };
    }
    var y = {
      title: { display: !!spec.y_label, text: spec.y_label },
      stacked: !!spec.stacked,
      beginAtZero: true,
      suggestedMax: spec.y_max,
      ticks: { precision: spec.y_integer ? 0 : undefined }
    };
    return {
      type: spec.kind,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: spec.horizontal ? "y" : "x",
        parsing: spec.x_time ? { xAxisKey: "x", yAxisKey: "y" } : undefined,
        scales: spec.horizontal ? { x: y, y: x } : { x: x, y: y },
        plugins: {
          legend: { display: datasets.length > 1 },
          tooltip: spec.x_time ? { callbacks: { title: function (items) { return formatTime(items[0].parsed.x, 0); } } } : {}
        }
      }
    };
  }

  function initChart(canvas) {
    if (typeof Chart === "undefined" || canvas.dataset.ready) { return; }
    canvas.dataset.ready = "1";
    fetchJson(canvas.dataset.src).then(function (spec) {
      canvas.setAttribute("aria-label", spec.summary);
      var empty = document.getElementById(canvas.dataset.empty);
      if (!spec.datasets.length || !spec.datasets.some(function (set) { return set.data.length; })) {
        if (empty) { empty.hidden = false; }
        canvas.parentElement.hidden = true;
        return;
      }
      new Chart(canvas, chartConfig(spec));
    });
  }

  function init(root) {
    root.querySelectorAll("[data-map]").forEach(initMap);
    root.querySelectorAll("canvas[data-chart]").forEach(initChart);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (event) { init(event.target); });
})();
