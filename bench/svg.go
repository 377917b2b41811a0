package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// palette gives each system a colour by its place in systems: Steward's
// in blues and greens, the peers in oranges and reds, no-session in grey.
var palette = map[string]string{
	"no-session":          "#7f7f7f",
	"steward-memory":      "#1f77b4",
	"steward-directory":   "#2ca02c",
	"steward-client":      "#17becf",
	"steward-redis":       "#9467bd",
	"steward-redis-local": "#c5b0d5",
	"scs-memstore":        "#ff7f0e",
	"scs-redis":           "#bcbd22",
	"gorilla-cookie":      "#d62728",
	"gorilla-filesystem":  "#8c564b",
}

// svg draws req/s per system, grouped by HTTP scenario: one bar per
// system with its value above it, the lost updates in red where there are
// any, and missing systems as dashed stubs.
func (rep *report) svg(w io.Writer) {
	type group struct {
		scenario string
		recs     []record
	}
	var groups []group
	for _, r := range rep.Records {
		if r.Scenario == scenarioScale {
			continue
		}
		if len(groups) == 0 || groups[len(groups)-1].scenario != r.Scenario {
			groups = append(groups, group{scenario: r.Scenario})
		}
		g := &groups[len(groups)-1]
		g.recs = append(g.recs, r)
	}
	maxRate := 0.0
	for _, g := range groups {
		for _, r := range g.recs {
			if r.ReqPerS != nil {
				maxRate = max(maxRate, *r.ReqPerS)
			}
		}
	}
	step := niceStep(maxRate / 5)
	top := step * math.Ceil(maxRate/step)
	if top == 0 {
		top, step = 1, 1
	}

	const (
		barW, barGap, groupGap = 44.0, 8.0, 70.0
		left, right            = 80.0, 30.0
		plotTop, plotH         = 86.0, 320.0
		labelsH                = 150.0
	)
	// Each group is as wide as its bars: the multi-instance scenarios
	// measure only the systems that can share a storage.
	groupW := func(g group) float64 { return float64(len(g.recs))*barW + float64(max(len(g.recs)-1, 0))*barGap }
	width := left + right
	for gi, g := range groups {
		width += groupW(g)
		if gi > 0 {
			width += groupGap
		}
	}
	width = max(width, 640)
	height := plotTop + plotH + labelsH
	base := plotTop + plotH
	y := func(v float64) float64 { return base - v/top*plotH }

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(w, `<text x="%.0f" y="28" font-size="18" font-weight="bold" fill="#222">Session counter over HTTP: requests per second (higher is better)</text>`+"\n", left)
	fmt.Fprintf(w, `<text x="%.0f" y="50" font-size="12" fill="#555">%s</text>`+"\n", left, esc(fmt.Sprintf("%s · %s · %d connections · median of %d round(s)", strings.TrimSpace(rep.Command), rep.Machine, rep.Connections, rep.Rounds)))
	fmt.Fprintf(w, `<text x="%.0f" y="68" font-size="12" fill="#555">above each bar: req/s and × no-session; red: lost updates; dashed: not implemented yet</text>`+"\n", left)

	// Axis and grid.
	for v := 0.0; v <= top*1.0001; v += step {
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e3e3e3"/>`+"\n", left, y(v), width-right, y(v))
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="12" fill="#444" text-anchor="end">%s</text>`+"\n", left-8, y(v)+4, esc(short(v)))
	}
	fmt.Fprintf(w, `<text transform="translate(18 %.1f) rotate(-90)" font-size="13" fill="#444" text-anchor="middle">req/s</text>`+"\n", plotTop+plotH/2)
	fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", left, base, width-right, base)

	x0 := left
	for gi, g := range groups {
		if gi > 0 {
			x0 += groupGap
		}
		for bi, r := range g.recs {
			x := x0 + float64(bi)*(barW+barGap)
			cx := x + barW/2
			colour := palette[r.System]
			if colour == "" {
				colour = "#444444"
			}
			if r.ReqPerS == nil {
				label := "missing"
				if r.Missing == "" {
					label = "failed"
				}
				fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="24" fill="none" stroke="%s" stroke-dasharray="4 3"/>`+"\n", x, base-24, barW, colour)
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" fill="#777" text-anchor="middle">%s</text>`+"\n", cx, base-30, label)
			} else {
				v := *r.ReqPerS
				fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
					x, y(v), barW, base-y(v), colour, esc(fmt.Sprintf("%s %s: %s req/s", g.scenario, r.System, thousands(v))))
				ty := y(v) - 6
				if r.RatioToNoSession != nil && r.System != "no-session" {
					fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" fill="#555" text-anchor="middle">%.2fx</text>`+"\n", cx, ty, *r.RatioToNoSession)
					ty -= 13
				}
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="11" font-weight="bold" fill="#222" text-anchor="middle">%s</text>`+"\n", cx, ty, esc(short(v)))
				ty -= 13
				if r.LostUpdates != nil && *r.LostUpdates != 0 {
					lost := "lost " + thousands(float64(*r.LostUpdates))
					if r.Increments > 0 {
						lost = fmt.Sprintf("lost %.0f%%", 100*float64(*r.LostUpdates)/float64(r.Increments))
					}
					fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="10" font-weight="bold" fill="#c00000" text-anchor="middle">%s</text>`+"\n", cx, ty, esc(lost))
				}
			}
			fmt.Fprintf(w, `<text transform="translate(%.1f %.1f) rotate(-40)" font-size="12" fill="#222" text-anchor="end">%s</text>`+"\n", cx+4, base+16, esc(r.System))
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="15" font-weight="bold" fill="#222" text-anchor="middle">%s</text>`+"\n", x0+groupW(g)/2, height-14, esc(g.scenario))
		x0 += groupW(g)
	}
	fmt.Fprintln(w, "</svg>")
}

// niceStep rounds x up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// short formats a rate compactly: 950, 12.3k, 1.25M.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v/1e6), "0"), ".") + "M"
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v/1e3), "0"), ".") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

func esc(s string) string { return html.EscapeString(s) }
