package server

import (
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
)

// A scripted scenario against a running node — connections, a refusal,
// subscriptions and a refused one, a REST event, a client event, a client
// that leaves — and then /metrics, parsed as Prometheus parses it, holds
// exactly the numbers the scenario implies, and no series names a
// channel, a user, a socket or an event.
func TestMetricsAfterScenario(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})

	c1, _ := connect(t, ts, a.Key)
	c2, s2 := connect(t, ts, a.Key)
	c3, s3 := connect(t, ts, a.Key)
	refused := dial(t, ts, "/app/no-such-key?protocol=7")
	if code := refused.ExpectClose(); code != 4001 {
		t.Fatalf("unknown key closed with %d", code)
	}

	c1.Subscribe("news", "", "")
	c1.Expect("pusher_internal:subscription_succeeded")
	c2.Subscribe("news", "", "")
	c2.Expect("pusher_internal:subscription_succeeded")
	c2.Subscribe("private-x", channelToken(a, s2, "private-x", ""), "")
	c2.Expect("pusher_internal:subscription_succeeded")
	c3.Subscribe("private-x", channelToken(a, s3, "private-x", ""), "")
	c3.Expect("pusher_internal:subscription_succeeded")
	c3.Subscribe("private-y", "key-1:bad", "")
	c3.Expect("pusher:subscription_error")

	if status, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/events", nil, `{"name":"e","channel":"news","data":"d"}`); status != 200 {
		t.Fatalf("REST publish: %d %s", status, body)
	}
	c1.Expect("e")
	c2.Expect("e")

	c3.Send(map[string]any{"event": "client-hi", "channel": "private-x", "data": map[string]any{}})
	c2.Expect("client-hi")

	c1.Conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ts.hub.Connections() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the closed client was not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}

	fams := scrapeMetrics(t, "http://"+ts.addr+"/metrics")
	want := map[string]float64{
		`herald_connections{app_id="1"}`:                                        2,
		`herald_connections_total{app_id="1"}`:                                  3,
		`herald_disconnections_total{app_id="1",reason="client_closed"}`:        1,
		`herald_disconnections_total{app_id="1",reason="slow_consumer"}`:        0,
		`herald_connections_refused_total{reason="refused"}`:                    1,
		`herald_channels{app_id="1"}`:                                           2,
		`herald_subscriptions{app_id="1"}`:                                      3,
		`herald_subscriptions_refused_total{app_id="1",reason="auth"}`:          1,
		`herald_messages_published_total{app_id="1",source="rest"}`:             1,
		`herald_messages_published_total{app_id="1",source="client"}`:           1,
		`herald_messages_delivered_total{app_id="1"}`:                           3,
		`herald_rest_requests_total{app_id="1",endpoint="events",status="200"}`: 1,
		`herald_rest_request_duration_seconds_count{endpoint="events"}`:         1,
		`herald_broker_operation_seconds_count{op="publish"}`:                   2,
		`herald_broker_errors_total{op="publish"}`:                              0,
	}
	got := flatten(fams)
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no series %s", k)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if t.Failed() {
		var keys []string
		for k := range got {
			if strings.HasPrefix(k, "herald_") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		t.Logf("scraped:\n%s", strings.Join(keys, "\n"))
	}
	for _, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				switch n := strings.ToLower(l.GetName()); {
				case strings.Contains(n, "channel"), strings.Contains(n, "user"), strings.Contains(n, "socket"), n == "event", n == "name":
					t.Errorf("%s has a %s label", f.GetName(), n)
				}
				if v := l.GetValue(); v == "news" || v == "private-x" || v == s2 || v == s3 || v == "client-hi" {
					t.Errorf("%s carries %q", f.GetName(), v)
				}
			}
		}
	}
}

func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// flatten keys each sample as name{label="value",...} in label order;
// histograms give their _count.
func flatten(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := func(n string) string {
				if len(ls) == 0 {
					return n
				}
				return n + "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key(name)] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key(name)] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key(name+"_count")] = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				out[key(name)] = m.Untyped.GetValue()
			}
		}
	}
	return out
}

// With metrics_addr set, /metrics moves there: the public listener no
// longer serves it.
func TestMetricsAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}, MetricsAddr: addr})
	connect(t, ts, a.Key)
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + addr + "/metrics"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fams = scrapeMetrics(t, "http://"+addr+"/metrics")
	if got := flatten(fams)[`herald_connections{app_id="1"}`]; got != 1 {
		t.Fatalf("herald_connections on metrics_addr = %v", got)
	}
	resp, err := http.Get("http://" + ts.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the main listener: %d, want 404 when metrics_addr is set", resp.StatusCode)
	}
}
