// The benchmark chart: one horizontal bar per case, the median Node/C ratio
// with a min–max whisker, and the targets as vertical lines. Plain SVG text,
// no dependency.
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(summary, machine) {
  const rows = summary.filter((s) => s.ratio);
  const rowH = 18;
  const left = 420;
  const width = 900;
  const plotW = width - left - 40;
  const top = 50;
  const height = top + rows.length * rowH + 40;
  // Scaled to the medians (an outlier's whisker is clipped at the edge), up to 2.5×.
  const max = Math.min(2.5, Math.max(1.2, ...rows.map((s) => s.ratio.median)) * 1.1);
  const x = (v) => left + (Math.min(v, max) / max) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">userfaultfd for Node vs a C handler: Node/C ratio (higher is better)</text>`);
  out.push(`<text x="10" y="34">${esc(`${machine.date}, kernel ${machine.kernel}, ${machine.cpu}, ${machine.cores} cores, ${machine.reps} rep(s)${machine.quick ? ', quick' : ''}; bar = median, whisker = min–max`)}</text>`);
  for (const [v, label] of [[0.8, '0.8 JS target'], [0.9, '0.9 bulk'], [0.95, '0.95 native'], [1, '1']]) {
    out.push(`<line x1="${x(v)}" y1="${top - 6}" x2="${x(v)}" y2="${top + rows.length * rowH}" stroke="${v === 1 ? '#444' : '#c33'}" stroke-dasharray="${v === 1 ? '' : '3,3'}"/>`);
    out.push(`<text x="${x(v) + 2}" y="${top + rows.length * rowH + 14 + (v === 0.9 ? 12 : 0)}" fill="${v === 1 ? '#444' : '#c33'}">${label}</text>`);
  }
  rows.forEach((s, i) => {
    const y = top + i * rowH;
    const color = s.group === 'fault' ? (s.id.endsWith('/js') ? '#4a7fc1' : '#2e9e5b') : s.group === 'bulk' ? '#d08b2c' : '#8a5cc2';
    out.push(`<text x="${left - 6}" y="${y + 12}" text-anchor="end">${esc(`${s.id} ${s.label}`.slice(0, 70))}</text>`);
    out.push(`<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(s.ratio.median) - left)}" height="${rowH - 6}" fill="${color}"/>`);
    out.push(`<line x1="${x(s.ratio.min)}" y1="${y + rowH / 2}" x2="${x(s.ratio.max)}" y2="${y + rowH / 2}" stroke="black"/>`);
    out.push(`<text x="${x(s.ratio.max) + 4}" y="${y + 12}">${s.ratio.median.toFixed(2)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
