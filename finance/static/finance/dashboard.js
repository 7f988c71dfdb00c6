// Draws the billing overview's charts from the figures the page already shows in its
// tables (passed as JSON by json_script); without JavaScript the tables are the page.
(function () {
  "use strict";
  var source = document.getElementById("dashboard-chart-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var colours = { invoiced: "#0b5cad", collected: "#1a7f37", refunded: "#9a6700", outstanding: "#cf222e" };
  var labels = { invoiced: "Invoiced", collected: "Collected", refunded: "Refunded", outstanding: "Outstanding" };
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var figures = data[canvas.dataset.chart];
    if (!figures) { return; }
    var datasets = ["invoiced", "collected", "refunded"].map(function (name) {
      return { type: "bar", label: labels[name], backgroundColor: colours[name],
               data: figures.series[name].map(Number) };
    });
    datasets.push({ type: "line", label: labels.outstanding, borderColor: colours.outstanding,
                    backgroundColor: colours.outstanding, data: figures.series.outstanding.map(Number) });
    new Chart(canvas, {
      data: { labels: figures.labels, datasets: datasets },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 scales: { y: { beginAtZero: true, title: { display: true, text: canvas.dataset.chart } } } }
    });
    canvas.dataset.drawn = "yes";
  });
})();
