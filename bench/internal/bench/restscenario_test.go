package bench

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEndToEndREST(t *testing.T) {
	f, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioREST, Conns: 10, Requests: 60, Publishers: 3, PID: os.Getpid()})
	r, d := res.REST, res.Delivery
	if !res.Complete || r == nil || d == nil || !d.Complete {
		t.Fatalf("result %+v, rest %+v, delivery %+v, errors %v", res, r, d, res.Errors)
	}
	if r.Requests != 60 || r.Events != 60 || r.Errors != 0 || r.Endpoint != "/apps/app-id/events" || r.Latency.Count != 60 {
		t.Errorf("rest %+v", r)
	}
	if d.Expected != 10*60 || d.Unique != 10*60 || d.Missing != 0 || res.Latency.Count != 10*60 {
		t.Errorf("delivery %+v, latency samples %d", d, res.Latency.Count)
	}
	if r.RequestsPerSecond <= 0 || r.EventsPerSecond != r.RequestsPerSecond || res.Server == nil || res.Server.Unit != "request" {
		t.Errorf("rest %+v, server %+v", r, res.Server)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// One warm-up request per publisher, then the 60; every publisher on
	// one keep-alive connection.
	if f.triggers != 63 || len(f.restClients) != 3 {
		t.Errorf("%d triggers from %d connections, want 63 from 3", f.triggers, len(f.restClients))
	}
	for addr, n := range f.restClients {
		if n != 21 {
			t.Errorf("connection %s sent %d requests, want 21", addr, n)
		}
	}
}

func TestEndToEndRESTBatch(t *testing.T) {
	f, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioREST, Conns: 4, Requests: 20, Batch: 5, Publishers: 2})
	r, d := res.REST, res.Delivery
	if !res.Complete || r.Requests != 20 || r.Events != 100 || r.Endpoint != "/apps/app-id/batch_events" {
		t.Fatalf("rest %+v, errors %v", r, res.Errors)
	}
	if d.Unique != 4*100 || d.OutOfOrder != 0 || d.Duplicate != 0 {
		t.Errorf("delivery %+v", d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.events != 100+2*5 { // and the warm-up batches
		t.Errorf("%d events published, want 110", f.events)
	}
}

// Without subscribers only the requests are counted, and the table says so.
func TestEndToEndRESTNoSubscribers(t *testing.T) {
	_, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioREST, Requests: 30, Publishers: 4})
	if !res.Complete || res.REST.Requests != 30 || res.Delivery != nil || res.Connections.Target != 0 {
		t.Fatalf("result %+v, rest %+v", res, res.REST)
	}
	var table strings.Builder
	WriteTable(&table, res)
	for _, want := range []string{"30 trigger requests (1 event each) by 4 publishers", "none (no subscribers)",
		"30 requests to /apps/app-id/events (30 events)", "COMPLETE"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js strings.Builder
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back struct {
		REST   map[string]any `json:"rest"`
		Params map[string]any `json:"params"`
	}
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.REST["requests"] != 30.0 || back.REST["events_per_second"] == nil || back.Params["requests"] != 30.0 {
		t.Errorf("json rest %v, params %v", back.REST, back.Params)
	}
}

// A server without batch_events (Ipe) ends the run at the warm-up, and
// the error says what to do.
func TestEndToEndRESTNoBatchEndpoint(t *testing.T) {
	f, srv := newFakePusher(t)
	f.noBatch = true
	o := Options{Scenario: ScenarioREST, URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Requests: 50, Batch: 10, Timeout: time.Minute}
	res, err := Run(t.Context(), o)
	if err == nil || res == nil || res.Complete || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "--batch 1") {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if res.REST.Requests != 0 {
		t.Errorf("%d requests sent after a refused warm-up", res.REST.Requests)
	}
}

// Refused requests are counted, and their events are not expected: the
// subscribers miss nothing else.
func TestEndToEndRESTRefusals(t *testing.T) {
	f, srv := newFakePusher(t)
	f.refuse = func(n int) bool { return n > 2 && n%7 == 0 } // not the two warm-ups
	res := runAgainst(t, srv, Options{Scenario: ScenarioREST, Conns: 5, Requests: 70, Publishers: 2})
	r, d := res.REST, res.Delivery
	refused := int64(0)
	for n := 3; n <= 72; n++ {
		if n%7 == 0 {
			refused++
		}
	}
	if res.Complete || r.Requests != 70 || r.Errors != refused || r.Events != 70-refused {
		t.Fatalf("complete %v, rest %+v", res.Complete, r)
	}
	if d.Missing != 0 || d.Unique != uint64(5*(70-refused)) || !d.Complete {
		t.Errorf("delivery %+v", d)
	}
	if len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "500") {
		t.Errorf("errors %v", res.Errors)
	}
}

// Lost deliveries make the run incomplete.
func TestEndToEndRESTLoss(t *testing.T) {
	f, srv := newFakePusher(t)
	f.drop = func(n int) bool { return n%25 == 3 }
	res := runAgainst(t, srv, Options{Scenario: ScenarioREST, Conns: 5, Requests: 40, Publishers: 2, Drain: 200 * time.Millisecond})
	d := res.Delivery
	if res.Complete || d.Complete || d.Missing != 200/25 || d.Unique+d.Missing != 200 {
		t.Fatalf("complete %v, delivery %+v", res.Complete, d)
	}
}

func TestRESTOptions(t *testing.T) {
	o := Options{Scenario: ScenarioREST}
	o.defaults()
	if err := o.validate(); err != nil || o.Conns != 0 || o.Publishers != 8 || o.Requests != 20000 || o.Batch != 1 || o.Size != 100 {
		t.Fatalf("%v %+v", err, o)
	}
	o = Options{Scenario: ScenarioFanout}
	o.defaults()
	if o.Publishers != 4 || o.Conns != 1000 {
		t.Errorf("fanout defaults changed: %d publishers, %d conns", o.Publishers, o.Conns)
	}
	for _, bad := range []Options{{Scenario: ScenarioREST, Conns: -1}, {Scenario: ScenarioREST, Requests: -5}, {Scenario: ScenarioREST, Batch: -1}} {
		bad.defaults()
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestTriggerBody(t *testing.T) {
	b := newTriggerBody(EventName, "hb-x-rest", true)
	var batch struct{ Batch []fakeEvent }
	if err := json.Unmarshal(b.build(3, 7, 3, 42, 100), &batch); err != nil {
		t.Fatal(err)
	}
	if len(batch.Batch) != 3 {
		t.Fatalf("batch %+v", batch)
	}
	for j, ev := range batch.Batch {
		m, ok := ParseMark([]byte(ev.Data))
		if ev.Name != EventName || ev.Channel != "hb-x-rest" || !ok || m != (Mark{Stream: 3, Seq: 7 + uint32(j), TS: 42}) || len(ev.Data) != 100 {
			t.Errorf("event %d: %+v, mark %+v", j, ev, m)
		}
	}
	one := newTriggerBody(EventName, "c", false)
	var ev fakeEvent
	if err := json.Unmarshal(one.build(0, 1, 1, 5, 60), &ev); err != nil || ev.Channel != "c" || len(ev.Data) != 60 {
		t.Fatalf("%v %+v", err, ev)
	}
}

func TestTriggerAllocs(t *testing.T) {
	b := newTriggerBody(EventName, "hb-x-rest", true)
	b.build(0, 0, 10, 1, 100)
	seq := uint32(0)
	if n := testing.AllocsPerRun(100, func() {
		seq += 10
		b.build(0, seq, 10, time.Now().UnixNano(), 100)
	}); n != 0 {
		t.Errorf("%v allocations per body, want 0", n)
	}
}

// A trigger connection signs the path behind any prefix, keeps its
// connection alive, and dials again when the server closes it.
func TestTriggerConn(t *testing.T) {
	var mu sync.Mutex
	var n int
	clients := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/pusher/apps/app-id/events" {
			http.NotFound(w, r)
			return
		}
		if err := checkSigned("app-key", "app-secret", "POST", "/apps/app-id/events", r.URL.Query(), body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		n++
		clients[r.RemoteAddr] = true
		if n == 3 {
			w.Header().Set("Connection", "close")
		}
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	tc, err := newTriggerConn(srv.URL+"/pusher/", "app-id", "app-key", "app-secret", false, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.close()
	b := newTriggerBody(EventName, "c", false)
	for i := range 5 {
		if err := tc.send(t.Context(), b.build(0, uint32(i), 1, 1, 100), time.Now()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if tc.dials != 2 || len(clients) != 2 {
		t.Errorf("%d dials, %d client addresses; want 2 (one closed after the third answer)", tc.dials, len(clients))
	}
	bad, _ := newTriggerConn(srv.URL+"/pusher", "app-id", "app-key", "wrong", false, 5*time.Second)
	defer bad.close()
	err = bad.send(t.Context(), b.build(0, 0, 1, 1, 100), time.Now())
	var se *ErrTriggerStatus
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized || !strings.Contains(se.Body, "auth_signature") {
		t.Fatalf("wrong secret: %v", err)
	}
	// The refusal's body was read: the connection still carries requests.
	if err := bad.send(t.Context(), b.build(0, 1, 1, 1, 100), time.Now()); !errors.As(err, &se) || bad.dials != 1 {
		t.Errorf("second refusal: %v after %d dials", err, bad.dials)
	}
}

// rest --conns 0 is its default, no subscribers: the command line takes it.
func TestCLIRESTWithoutSubscribers(t *testing.T) {
	_, srv := newFakePusher(t)
	var stdout, stderr strings.Builder
	code := Main(t.Context(), []string{"rest", "--conns", "0", "--requests", "5", "--quiet", "--json",
		"--url", "ws" + strings.TrimPrefix(srv.URL, "http")}, &stdout, &stderr)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res Result
	if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil || res.REST == nil || res.REST.Requests != 5 || res.Params.Publishers != 8 {
		t.Fatalf("%v %+v", err, res.REST)
	}
}

// A 200 that carries {"error": ...} is a refusal (soketi 1.6.1 answers a
// failed signature check so); a 200 with anything else is not, even when a
// channel is named "error".
func TestTriggerErrorBody(t *testing.T) {
	answers := []string{`{"error":"The secret authentication failed","code":401}`, `{"channels":{"error":{"subscription_count":1}}}`, `{}`}
	var i int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(answers[i%len(answers)]))
		i++
	}))
	defer srv.Close()
	tc, err := newTriggerConn(srv.URL, "app-id", "app-key", "app-secret", false, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.close()
	b := newTriggerBody(EventName, "c", false)
	var se *ErrTriggerStatus
	if err := tc.send(t.Context(), b.build(0, 0, 1, 1, 100), time.Now()); !errors.As(err, &se) || se.Status != http.StatusOK || !strings.Contains(se.Body, "authentication failed") {
		t.Errorf("200 with an error body: %v", err)
	}
	for k := 1; k < 3; k++ {
		if err := tc.send(t.Context(), b.build(0, uint32(k), 1, 1, 100), time.Now()); err != nil {
			t.Errorf("answer %s: %v", answers[k], err)
		}
	}
}
