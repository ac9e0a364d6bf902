package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/internal/metrics"
)

// scrape fetches m's handler as Prometheus would and parses the text format.
// It returns the body too, for checks on what must never appear in it.
func scrape(t *testing.T, m *metrics.Metrics) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams, string(body)
}

// labels renders a metric's label set as a=b,c=d, sorted.
func labels(m *dto.Metric) string {
	var kv []string
	for _, l := range m.GetLabel() {
		kv = append(kv, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// find returns the metric of family name whose label set is exactly want
// ("a=b,c=d", sorted by name; "" for none).
func find(t *testing.T, fams map[string]*dto.MetricFamily, name, want string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	var have []string
	for _, m := range f.GetMetric() {
		if labels(m) == want {
			return m
		}
		have = append(have, labels(m))
	}
	t.Fatalf("%s{%s} missing; it has %q", name, want, have)
	return nil
}

// value is a counter's, gauge's or untyped metric's value.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, want string) float64 {
	t.Helper()
	m := find(t, fams, name, want)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s{%s} is not a counter or gauge", name, want)
	return 0
}

// histogram is a histogram's sample count and sum.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name, want string) (uint64, float64) {
	t.Helper()
	h := find(t, fams, name, want).GetHistogram()
	if h == nil {
		t.Fatalf("%s{%s} is not a histogram", name, want)
	}
	return h.GetSampleCount(), h.GetSampleSum()
}

// expect is a table of exact values: name{labels} -> value.
type expect map[string]float64

func (e expect) check(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	for key, want := range e {
		name, ls, _ := strings.Cut(strings.TrimSuffix(key, "}"), "{")
		if got := value(t, fams, name, ls); got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

// series is how many series family name has.
func series(fams map[string]*dto.MetricFamily, name string) int {
	return len(fams[name].GetMetric())
}

func key(name string, kv ...string) string {
	var ls []string
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, fmt.Sprintf("%s=%s", kv[i], kv[i+1]))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func httptestRequest(accept, encoding string) *http.Request {
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	return req
}

func serve(m *metrics.Metrics, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, req)
	return rec
}
