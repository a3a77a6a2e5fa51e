// The loss curve as a small self-contained SVG (train loss as a line,
// validation loss as dots), rewritten as training goes.
export function lossCurveSvg(points: { step: number; loss: number; valLoss?: number }[]): string {
  const W = 640;
  const H = 360;
  const m = { l: 56, r: 16, t: 24, b: 40 };
  const finite = points.filter((p) => Number.isFinite(p.loss));
  const values = [
    ...finite.map((p) => p.loss),
    ...finite.flatMap((p) => (p.valLoss !== undefined ? [p.valLoss] : [])),
  ];
  const maxStep = Math.max(1, ...finite.map((p) => p.step));
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const pad = (hi - lo) * 0.05 || 0.5;
  const y0 = lo - pad;
  const y1 = hi + pad;
  const x = (s: number) => m.l + ((W - m.l - m.r) * s) / maxStep;
  const y = (v: number) => m.t + ((H - m.t - m.b) * (y1 - v)) / (y1 - y0);
  const f = (n: number) => n.toFixed(1);
  const line = finite.map((p) => `${f(x(p.step))},${f(y(p.loss))}`).join(" ");
  const dots = finite
    .filter((p) => p.valLoss !== undefined)
    .map((p) => `<circle cx="${f(x(p.step))}" cy="${f(y(p.valLoss!))}" r="3" fill="#d62728"/>`)
    .join("");
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => {
    const v = y0 + (y1 - y0) * t;
    return `<text x="${m.l - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v.toFixed(2)}</text><line x1="${m.l}" x2="${W - m.r}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#eee"/>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...ticks,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
    `<text x="${m.l}" y="${H - 12}">0</text><text x="${W - m.r}" y="${H - 12}" text-anchor="end">step ${maxStep}</text>`,
    `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${line}"/>`,
    dots,
    `<text x="${m.l}" y="16">train loss (line), validation loss (dots)</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
