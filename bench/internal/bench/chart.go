package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Metric is one number a chart can show, taken from a Result.
type Metric struct {
	Name  string
	Title string
	Get   func(*Result) (float64, bool)
}

// Metrics lists what charts can show.
var Metrics = []Metric{
	{"delivered_per_second", "delivered messages/s", func(r *Result) (float64, bool) {
		return fieldOf(r.Delivery, func(d *DeliveryResult) float64 { return d.PerSecond })
	}},
	{"p50_ms", "latency p50 (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.Latency, func(l *LatencySummary) float64 { return l.P50MS })
	}},
	{"p90_ms", "latency p90 (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.Latency, func(l *LatencySummary) float64 { return l.P90MS })
	}},
	{"p99_ms", "latency p99 (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.Latency, func(l *LatencySummary) float64 { return l.P99MS })
	}},
	{"max_ms", "latency max (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.Latency, func(l *LatencySummary) float64 { return l.MaxMS })
	}},
	{"server_cpu_us", "server CPU us per message (or connection)", func(r *Result) (float64, bool) {
		return fieldOf(r.Server, func(p *ProcResult) float64 { return p.CPUPerUnitUS })
	}},
	{"server_rss_per_conn", "server RSS bytes per connection", func(r *Result) (float64, bool) {
		return fieldOf(r.Server, func(p *ProcResult) float64 { return p.RSSPerConn })
	}},
	{"client_rss_per_conn", "client RSS bytes per connection", func(r *Result) (float64, bool) {
		return r.Client.RSSPerConn, r.Client.RSSConnected > 0
	}},
	{"conns_per_second", "connections established/s", func(r *Result) (float64, bool) {
		return r.Connections.PerSecond, r.Connections.Established > 0
	}},
	{"handshake_p99_ms", "handshake p99 (ms)", func(r *Result) (float64, bool) {
		return r.Connections.Handshake.P99MS, r.Connections.Handshake.Count > 0
	}},
	{"publish_per_second", "publish requests/s", func(r *Result) (float64, bool) {
		return fieldOf(r.Publish, func(p *PublishResult) float64 { return p.PerSecond })
	}},
	{"rest_requests_per_second", "REST requests/s", func(r *Result) (float64, bool) {
		return fieldOf(r.REST, func(x *RESTResult) float64 { return x.RequestsPerSecond })
	}},
	{"rest_events_per_second", "REST events/s", func(r *Result) (float64, bool) {
		return fieldOf(r.REST, func(x *RESTResult) float64 { return x.EventsPerSecond })
	}},
	{"rest_p99_ms", "REST request p99 (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.REST, func(x *RESTResult) float64 { return x.Latency.P99MS })
	}},
	{"rest_server_cpu_per_request_us", "server CPU us per REST request", func(r *Result) (float64, bool) {
		return fieldOf(r.REST, func(x *RESTResult) float64 { return x.ServerCPUPerRequestUS })
	}},
	{"rest_server_cpu_per_event_us", "server CPU us per REST event", func(r *Result) (float64, bool) {
		return fieldOf(r.REST, func(x *RESTResult) float64 { return x.ServerCPUPerEventUS })
	}},
	{"joins_per_second", "presence joins/s", func(r *Result) (float64, bool) {
		return fieldOf(r.Presence, func(p *PresenceResult) float64 { return p.JoinsPerSecond })
	}},
	{"join_p99_ms", "presence join p99 (ms)", func(r *Result) (float64, bool) {
		return fieldOf(r.Presence, func(p *PresenceResult) float64 { return p.JoinLatency.P99MS })
	}},
}

func fieldOf[T any](p *T, f func(*T) float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return f(p), true
}

// defaultMetrics picks the metrics that matter for a scenario.
func defaultMetrics(scenario string) []string {
	switch scenario {
	case ScenarioConnect:
		return []string{"conns_per_second", "handshake_p99_ms", "server_rss_per_conn"}
	case ScenarioIdle:
		return []string{"server_rss_per_conn", "client_rss_per_conn"}
	case ScenarioPresence:
		return []string{"joins_per_second", "join_p99_ms", "p99_ms"}
	case ScenarioREST:
		return []string{"rest_requests_per_second", "rest_p99_ms", "rest_server_cpu_per_request_us", "rest_server_cpu_per_event_us"}
	}
	return []string{"delivered_per_second", "p50_ms", "p99_ms", "server_cpu_us"}
}

// Series is one labelled result in a chart.
type Series struct {
	Label  string
	Result *Result
}

// ReadResults decodes every JSON result in r (one or more objects, as
// written by --json, possibly appended to one file).
func ReadResults(r io.Reader, name string) ([]Series, error) {
	dec := json.NewDecoder(r)
	var out []Series
	for {
		var res Result
		if err := dec.Decode(&res); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		label := res.Label
		if label == "" {
			label = strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
			if len(out) > 0 {
				label += fmt.Sprintf("#%d", len(out)+1)
			}
		}
		out = append(out, Series{Label: label, Result: &res})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no result", name)
	}
	return out, nil
}

// Chart layout, in pixels.
const (
	chartWidth   = 900
	chartMargin  = 12
	chartLabelW  = 220
	chartRowH    = 22
	chartBarH    = 14
	chartTitleH  = 24
	chartPanelGp = 14
)

var (
	chartBG    = color.RGBA{0xFF, 0xFF, 0xFF, 0xFF}
	chartInk   = color.RGBA{0x20, 0x20, 0x20, 0xFF}
	chartGrid  = color.RGBA{0xE4, 0xE4, 0xE4, 0xFF}
	chartBars  = []color.RGBA{{0x3B, 0x6E, 0xB5, 0xFF}, {0xE0, 0x7A, 0x2E, 0xFF}, {0x4C, 0xA0, 0x5A, 0xFF}, {0xB5, 0x3B, 0x5C, 0xFF}, {0x7A, 0x5C, 0xB5, 0xFF}}
	chartWarns = color.RGBA{0xC0, 0x20, 0x20, 0xFF}
)

// DrawChart draws one horizontal bar panel per metric, one bar per series.
// Incomplete runs get their label in red and a "!" so a fast but lossy run
// cannot pass for a good one.
func DrawChart(series []Series, metrics []string) (*image.RGBA, error) {
	var ms []Metric
	for _, name := range metrics {
		i := -1
		for j, m := range Metrics {
			if m.Name == name {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("unknown metric %q", name)
		}
		ms = append(ms, Metrics[i])
	}
	panelH := chartTitleH + len(series)*chartRowH
	height := chartMargin*2 + len(ms)*panelH + (len(ms)-1)*chartPanelGp
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	draw.Draw(img, img.Bounds(), image.NewUniform(chartBG), image.Point{}, draw.Src)
	y := chartMargin
	for _, m := range ms {
		drawPanel(img, m, series, y)
		y += panelH + chartPanelGp
	}
	return img, nil
}

func drawPanel(img *image.RGBA, m Metric, series []Series, top int) {
	drawText(img, chartMargin, top+15, m.Title, chartInk)
	maxV := 0.0
	for _, s := range series {
		if v, ok := m.Get(s.Result); ok && v > maxV {
			maxV = v
		}
	}
	x0 := chartMargin + chartLabelW
	barMax := chartWidth - x0 - chartMargin - 90 // room for the value
	for i := 0; i <= 4; i++ {
		x := x0 + barMax*i/4
		fill(img, image.Rect(x, top+chartTitleH-4, x+1, top+chartTitleH+len(series)*chartRowH), chartGrid)
	}
	for i, s := range series {
		rowY := top + chartTitleH + i*chartRowH
		label, ink := s.Label, chartInk
		if !s.Result.Complete {
			label, ink = "! "+label, chartWarns
		}
		if len(label) > chartLabelW/7-1 {
			label = label[:chartLabelW/7-3] + ".."
		}
		drawText(img, chartMargin, rowY+chartBarH-2, label, ink)
		v, ok := m.Get(s.Result)
		if !ok {
			drawText(img, x0+4, rowY+chartBarH-2, "n/a", chartInk)
			continue
		}
		w := 0
		if maxV > 0 {
			w = int(float64(barMax) * v / maxV)
		}
		fill(img, image.Rect(x0, rowY+2, x0+max(w, 1), rowY+2+chartBarH), chartBars[i%len(chartBars)])
		drawText(img, x0+w+6, rowY+chartBarH-2, formatValue(v), chartInk)
	}
}

func formatValue(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// chartMain is "herald-bench chart".
func chartMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald-bench chart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "chart.png", "PNG file to write")
	metrics := fs.String("metrics", "", "comma-separated metrics (default: by the first result's scenario); one of: "+metricNames())
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: herald-bench chart [-o chart.png] [--metrics m1,m2] result.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitError
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitError
	}
	var series []Series
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "herald-bench chart:", err)
			return ExitError
		}
		s, err := ReadResults(f, name)
		f.Close()
		if err != nil {
			fmt.Fprintln(stderr, "herald-bench chart:", err)
			return ExitError
		}
		series = append(series, s...)
	}
	names := defaultMetrics(series[0].Result.Scenario)
	if *metrics != "" {
		names = strings.Split(*metrics, ",")
	}
	img, err := DrawChart(series, names)
	if err == nil {
		err = writePNG(*out, img)
	}
	if err != nil {
		fmt.Fprintln(stderr, "herald-bench chart:", err)
		return ExitError
	}
	fmt.Fprintf(stdout, "wrote %s (%d results, %d metrics)\n", *out, len(series), len(names))
	return ExitOK
}

func writePNG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func metricNames() string {
	var names []string
	for _, m := range Metrics {
		names = append(names, m.Name)
	}
	return strings.Join(names, ", ")
}
