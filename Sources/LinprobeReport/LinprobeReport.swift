/// The `report` stage: results gathered into report.md, report.json and a self-contained
/// report.html with inline SVG charts.
public enum LinprobeReport {}
