#!/usr/bin/env python3
"""A line chart as SVG, with no plotting library: the benchmark scripts' plots.

Usage: plot.py OUT.svg TITLE XLABEL YLABEL DATA.tsv
DATA.tsv rows: series <TAB> x <TAB> y. The x values are categories, in the
order they first appear; one line per series, in the order they first appear.
"""
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def main(out_path, title, xlabel, ylabel, data_path):
    series, xs, points = [], [], {}
    for line in open(data_path):
        if not line.strip():
            continue
        name, x, y = line.rstrip("\n").split("\t")
        if name not in series:
            series.append(name)
        if x not in xs:
            xs.append(x)
        points[(name, x)] = float(y)
    W, H, L, B = 600, 340, 80, 50
    ymax = max(points.values()) * 1.15 if points else 1.0

    def px(i):
        return L + (W - L - 20) * (i + 0.5) / max(1, len(xs))

    def py(v):
        return H - B - (H - B - 30) * v / ymax

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (W, H),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="16" text-anchor="middle">%s</text>' % (W // 2, title),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>' % (L, H - B, W - 10, H - B),
           '<line x1="%d" y1="30" x2="%d" y2="%d" stroke="black"/>' % (L, L, H - B)]
    for k in range(5):
        v = ymax * k / 4
        out.append('<text x="%d" y="%.0f" text-anchor="end">%.0f</text>' % (L - 6, py(v) + 4, v))
        out.append('<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#ddd"/>' % (L, py(v), W - 10, py(v)))
    for i, x in enumerate(xs):
        out.append('<text x="%.0f" y="%d" text-anchor="middle">%s</text>' % (px(i), H - B + 18, x))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % ((W + L) // 2, H - 10, xlabel))
    out.append('<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">%s</text>'
               % (H // 2, H // 2, ylabel))
    for n, name in enumerate(series):
        color = COLORS[n % len(COLORS)]
        pts = [(px(i), py(points[(name, x)])) for i, x in enumerate(xs) if (name, x) in points]
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                   % (color, " ".join("%.0f,%.0f" % p for p in pts)))
        for cx, cy in pts:
            out.append('<circle cx="%.0f" cy="%.0f" r="4" fill="%s"/>' % (cx, cy, color))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (W - 150, 46 + 16 * n, color, name))
    out.append("</svg>")
    open(out_path, "w").write("\n".join(out) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
