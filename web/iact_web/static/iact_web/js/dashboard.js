// DORA trend charts. The data comes from the page itself (Django's json_script, a JSON <script> block):
// no inline script, so the Content-Security-Policy allows only files from this host.
(function () {
  "use strict";
  var source = document.getElementById("dora-trend");
  if (!source || typeof window.Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var colours = {
    deployment_days_per_week: "#2563eb",
    lead_time_hours: "#7c3aed",
    change_failure_rate_pct: "#dc2626",
    time_to_restore_hours: "#d97706"
  };
  Object.keys(data.series).forEach(function (name) {
    var canvas = document.getElementById("chart-" + name);
    if (!canvas) { return; }
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [{
          label: name.replace(/_/g, " "),
          data: data.series[name],
          borderColor: colours[name],
          backgroundColor: colours[name],
          pointRadius: 0,
          borderWidth: 2,
          spanGaps: false,
          tension: 0.2
        }]
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true } }
      }
    });
  });
  document.body.setAttribute("data-charts-drawn", String(Object.keys(data.series).length));
})();
