package bench

import (
	"bytes"
	"image/color"
	"strings"
	"testing"
)

func TestReadResultsAndDrawChart(t *testing.T) {
	var buf bytes.Buffer
	a := &Result{Scenario: ScenarioFanout, Label: "herald", Complete: true,
		Delivery: &DeliveryResult{PerSecond: 1_000_000}, Latency: &LatencySummary{P50MS: 2, P99MS: 9},
		Server: &ProcResult{CPUPerUnitUS: 0.8}}
	b := &Result{Scenario: ScenarioFanout, Complete: false,
		Delivery: &DeliveryResult{PerSecond: 250_000}, Latency: &LatencySummary{P50MS: 4, P99MS: 30}}
	for _, r := range []*Result{a, b} { // two objects in one file, as `>>` makes
		if err := WriteJSON(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	series, err := ReadResults(&buf, "runs/fanout.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].Label != "herald" || series[1].Label != "fanout#2" {
		t.Fatalf("series %+v", series)
	}
	if series[0].Result.Delivery.PerSecond != 1_000_000 {
		t.Errorf("round trip lost a value: %+v", series[0].Result.Delivery)
	}

	metrics := defaultMetrics(ScenarioFanout)
	img, err := DrawChart(series, metrics)
	if err != nil {
		t.Fatal(err)
	}
	wantH := chartMargin*2 + len(metrics)*(chartTitleH+2*chartRowH) + (len(metrics)-1)*chartPanelGp
	if img.Bounds().Dx() != chartWidth || img.Bounds().Dy() != wantH {
		t.Errorf("image %v, want %dx%d", img.Bounds(), chartWidth, wantH)
	}
	// The first panel's bars: the larger value spans the full bar width.
	rowY := chartMargin + chartTitleH + 2 + chartBarH/2
	x0 := chartMargin + chartLabelW
	barMax := chartWidth - x0 - chartMargin - 90
	if got := img.RGBAAt(x0+barMax-1, rowY); got != chartBars[0] {
		t.Errorf("end of the longest bar is %v", got)
	}
	if got := img.RGBAAt(x0+barMax/4+5, rowY+chartRowH); got == chartBars[1] {
		t.Errorf("a bar of a quarter of the maximum reaches past a quarter")
	}
	if got := img.RGBAAt(x0+barMax/4-5, rowY+chartRowH); got != chartBars[1] {
		t.Errorf("second bar at a quarter: %v", got)
	}
	// The incomplete run's label is drawn in the warning colour.
	found := false
	for x := chartMargin; x < x0 && !found; x++ {
		for y := rowY + chartRowH - 8; y < rowY+chartRowH+8; y++ {
			if img.RGBAAt(x, y) == (color.RGBA(chartWarns)) {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("incomplete run not flagged")
	}

	if _, err := DrawChart(series, []string{"bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown metric: %v", err)
	}
	if _, err := ReadResults(strings.NewReader(""), "empty.json"); err == nil {
		t.Error("empty input should fail")
	}
}
