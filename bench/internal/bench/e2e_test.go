package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakePusher is a minimal Pusher server for the end-to-end tests: public and
// presence subscriptions, member events, and the signed trigger endpoint.
// drop and dup, when set, make it lose or repeat deliveries on purpose.
type fakePusher struct {
	t    *testing.T
	mu   sync.Mutex
	next int
	subs map[string]map[*fakeClient]string // channel → client → presence user id
	drop func(n int) bool                  // per delivery number
	dup  func(n int) bool
	sent int
	// By node (the listener's address): connections and trigger requests.
	connsAt, triggersAt map[string]int
	subsAt              map[string]map[string]bool // channel → nodes it had subscribers on
	events              int                        // channel events triggered
	// pongs counts the Centrifugo clients' answers to pings.
	pongs int
	// REST: noBatch answers batch_events with 404, as Ipe does; refuse,
	// when set, makes a trigger fail with 500 (by trigger number); the
	// clients that sent triggers, by remote address.
	noBatch     bool
	refuse      func(n int) bool
	triggers    int
	restClients map[string]int
}

type fakeClient struct {
	mu         sync.Mutex
	conn       net.Conn
	id         string
	host       string // the node it connected to
	centrifugo bool
}

func (c *fakeClient) send(msg []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	wsutil.WriteServerText(c.conn, msg)
}

func newFakePusher(t *testing.T) (*fakePusher, *httptest.Server) {
	f, srvs := newFakeCluster(t, 1)
	return f, srvs[0]
}

// newFakeCluster serves one fake server's state from n listeners, the
// nodes of a cluster: every node delivers every event to its subscribers.
func newFakeCluster(t *testing.T, n int) (*fakePusher, []*httptest.Server) {
	f := &fakePusher{t: t, subs: map[string]map[*fakeClient]string{}, triggersAt: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/app/app-key", f.serveWS)
	mux.HandleFunc("POST /apps/app-id/events", f.serveTrigger)
	mux.HandleFunc("POST /apps/app-id/batch_events", f.serveBatch)
	mux.HandleFunc("/connection/websocket", f.serveCentrifugo)
	var srvs []*httptest.Server
	for range n {
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	return f, srvs
}

func (f *fakePusher) serveWS(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	f.mu.Lock()
	if f.connsAt == nil {
		f.connsAt = map[string]int{}
	}
	f.connsAt[r.Host]++
	f.next++
	c := &fakeClient{conn: conn, id: fmt.Sprintf("%d.%d", f.next, f.next*7), host: r.Host}
	f.mu.Unlock()
	c.send([]byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"` + c.id + `\",\"activity_timeout\":120}"}`))
	defer f.leaveAll(c)
	for {
		msg, err := wsutil.ReadClientText(conn)
		if err != nil {
			conn.Close()
			return
		}
		var m struct {
			Event string
			Data  struct {
				Channel     string
				Auth        string
				ChannelData string `json:"channel_data"`
			}
		}
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		switch m.Event {
		case "pusher:subscribe":
			f.subscribe(c, m.Data.Channel, m.Data.Auth, m.Data.ChannelData)
		case "pusher:unsubscribe":
			f.unsubscribe(c, m.Data.Channel)
		}
	}
}

func (f *fakePusher) subscribe(c *fakeClient, ch, token, channelData string) {
	f.mu.Lock()
	if f.subsAt == nil {
		f.subsAt = map[string]map[string]bool{}
	}
	if f.subsAt[ch] == nil {
		f.subsAt[ch] = map[string]bool{}
	}
	f.subsAt[ch][c.host] = true
	f.mu.Unlock()
	user := ""
	if strings.HasPrefix(ch, "presence-") {
		if token != channelToken("app-key", "app-secret", c.id, ch, channelData) {
			c.send([]byte(`{"event":"pusher:error","channel":"` + ch + `","data":{"code":null,"message":"bad auth"}}`))
			return
		}
		var cd struct {
			UserID   string          `json:"user_id"`
			UserInfo json.RawMessage `json:"user_info"`
		}
		json.Unmarshal([]byte(channelData), &cd)
		user = cd.UserID
		if len(cd.UserInfo) == 0 {
			cd.UserInfo = json.RawMessage("{}")
		}
		added, _ := json.Marshal(map[string]any{"user_id": user, "user_info": cd.UserInfo})
		frame := f.frame("pusher_internal:member_added", ch, string(added))
		f.mu.Lock()
		for other := range f.subs[ch] {
			other.send(frame)
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	if f.subs[ch] == nil {
		f.subs[ch] = map[*fakeClient]string{}
	}
	f.subs[ch][c] = user
	f.mu.Unlock()
	c.send(f.frame("pusher_internal:subscription_succeeded", ch, "{}"))
}

func (f *fakePusher) unsubscribe(c *fakeClient, ch string) {
	f.mu.Lock()
	user, ok := f.subs[ch][c]
	delete(f.subs[ch], c)
	var others []*fakeClient
	for o := range f.subs[ch] {
		others = append(others, o)
	}
	f.mu.Unlock()
	if ok && user != "" {
		frame := f.frame("pusher_internal:member_removed", ch, `{"user_id":"`+user+`"}`)
		for _, o := range others {
			o.send(frame)
		}
	}
}

func (f *fakePusher) leaveAll(c *fakeClient) {
	f.mu.Lock()
	var chans []string
	for ch, m := range f.subs {
		if _, ok := m[c]; ok {
			chans = append(chans, ch)
		}
	}
	f.mu.Unlock()
	for _, ch := range chans {
		f.unsubscribe(c, ch)
	}
}

func (f *fakePusher) frame(event, channel, data string) []byte {
	b := []byte(`{"event":`)
	b = appendJSONString(b, event)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	return append(b, '}')
}

func (f *fakePusher) serveTrigger(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := checkSigned("app-key", "app-secret", "POST", r.URL.Path, r.URL.Query(), body, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev fakeEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !f.admit(w, r) {
		return
	}
	f.mu.Lock()
	f.publish(ev)
	f.mu.Unlock()
	w.Write([]byte("{}"))
}

type fakeEvent struct {
	Name, Data, Channel string
	Channels            []string
}

// admit counts a trigger request and its client, and refuses it when the
// test says so.
func (f *fakePusher) admit(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	f.triggers++
	n := f.triggers
	if f.restClients == nil {
		f.restClients = map[string]int{}
	}
	f.restClients[r.RemoteAddr]++
	f.triggersAt[r.Host]++
	f.mu.Unlock()
	if f.refuse != nil && f.refuse(n) {
		http.Error(w, "refused on purpose", http.StatusInternalServerError)
		return false
	}
	return true
}

func (f *fakePusher) serveBatch(w http.ResponseWriter, r *http.Request) {
	if f.noBatch {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := checkSigned("app-key", "app-secret", "POST", r.URL.Path, r.URL.Query(), body, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var b struct{ Batch []fakeEvent }
	if err := json.Unmarshal(body, &b); err != nil || len(b.Batch) == 0 || len(b.Batch) > 10 {
		http.Error(w, "a batch holds 1 to 10 events", http.StatusBadRequest)
		return
	}
	if !f.admit(w, r) {
		return
	}
	f.mu.Lock()
	for _, ev := range b.Batch {
		f.publish(ev)
	}
	f.mu.Unlock()
	w.Write([]byte(`{"batch":[]}`))
}

// publish delivers ev to its channels' subscribers; f.mu is held.
func (f *fakePusher) publish(ev fakeEvent) {
	if ev.Channel != "" {
		ev.Channels = append(ev.Channels, ev.Channel)
	}
	f.events += len(ev.Channels)
	for _, ch := range ev.Channels {
		pusherFrame := f.frame(ev.Name, ch, ev.Data)
		cfFrame := centrifugoPub(ch, ev.Name, ev.Data)
		for c := range f.subs[ch] {
			frame := pusherFrame
			if c.centrifugo {
				frame = cfFrame
			}
			f.sent++
			if f.drop != nil && f.drop(f.sent) {
				continue
			}
			c.send(frame)
			if f.dup != nil && f.dup(f.sent) {
				c.send(frame)
			}
		}
	}
}

func runAgainst(t *testing.T, srv *httptest.Server, o Options) *Result {
	t.Helper()
	o.URL = "ws" + strings.TrimPrefix(srv.URL, "http")
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func readers() []string {
	if epollSupported {
		return []string{"epoll", "goroutine"}
	}
	return []string{"goroutine"}
}

func TestEndToEndFanout(t *testing.T) {
	for _, rd := range readers() {
		t.Run(rd, func(t *testing.T) {
			_, srv := newFakePusher(t)
			res := runAgainst(t, srv, Options{Scenario: ScenarioFanout, Reader: rd, Conns: 20, Events: 60, Publishers: 3, Concurrency: 5})
			d := res.Delivery
			if !res.Complete || !d.Complete || d.Unique != 20*60 || d.Expected != 20*60 || d.Missing != 0 {
				t.Fatalf("result %+v, delivery %+v, errors %v", res, d, res.Errors)
			}
			if res.Latency.Count != 20*60 || res.Publish.Requests != 60 || res.Connections.Established != 20 {
				t.Errorf("latency samples %d, requests %d, conns %d", res.Latency.Count, res.Publish.Requests, res.Connections.Established)
			}
		})
	}
}

func TestEndToEndChannels(t *testing.T) {
	_, srv := newFakePusher(t)
	// 60 connections × 3 channels = 180 channels: two batches per round.
	res := runAgainst(t, srv, Options{Scenario: ScenarioChannels, Conns: 60, ChannelsPerConn: 3, Events: 4, Publishers: 2})
	d := res.Delivery
	if !res.Complete || d.Unique != 60*3*4 || res.Publish.Requests != 2*4 || res.Publish.ChannelEvents != 180*4 {
		t.Fatalf("delivery %+v, publish %+v, errors %v", d, res.Publish, res.Errors)
	}
}

func TestEndToEndPresence(t *testing.T) {
	_, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioPresence, Conns: 12, PresenceChannels: 3, Churners: 5, Cycles: 4})
	d := res.Delivery
	// Watchers per channel: 4; churners on channels 0,1,2: 2,2,1.
	want := uint64(4 * (2 + 2 + 1) * 4 * 2)
	if !res.Complete || d.Unique != want || res.Presence.Joins != 5*4 {
		t.Fatalf("delivery %+v (want %d), presence %+v, errors %v", d, want, res.Presence, res.Errors)
	}
	if res.Latency.Count != want/2 || res.Presence.RemovedLatency.Count != want/2 {
		t.Errorf("member_added samples %d, member_removed samples %d", res.Latency.Count, res.Presence.RemovedLatency.Count)
	}
}

func TestEndToEndConnectAndIdle(t *testing.T) {
	_, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioConnect, Conns: 40, Subscribe: true})
	if !res.Complete || res.Connections.Established != 40 || res.Connections.Handshake.Count != 40 {
		t.Fatalf("connect: %+v", res.Connections)
	}
	// The fake server runs in this process: its pid exercises the /proc sampling.
	res = runAgainst(t, srv, Options{Scenario: ScenarioIdle, Conns: 15, Duration: 50 * time.Millisecond, PID: os.Getpid()})
	if !res.Complete || res.Idle.Alive != 15 || res.Server == nil {
		t.Fatalf("idle: %+v %+v", res.Idle, res.Server)
	}
}

// TestEndToEndLossIsReported has the server lose and repeat deliveries: the
// run must stop by itself and count them.
func TestEndToEndLossIsReported(t *testing.T) {
	f, srv := newFakePusher(t)
	f.drop = func(n int) bool { return n%50 == 7 }
	f.dup = func(n int) bool { return n%40 == 3 }
	res := runAgainst(t, srv, Options{Scenario: ScenarioFanout, Conns: 10, Events: 100, Publishers: 1, Drain: 200 * time.Millisecond})
	d := res.Delivery
	if res.Complete || d.Complete {
		t.Fatal("a lossy run reported complete")
	}
	if d.Missing != 1000/50 || d.Duplicate != 1000/40 || d.Unique+d.Missing != 1000 || d.OutOfOrder != 0 {
		t.Fatalf("delivery %+v", d)
	}
}

// TestEndToEndSlowClientsLeftOpen: a server that never cuts slow clients
// is reported as such.
func TestEndToEndSlowClientsLeftOpen(t *testing.T) {
	_, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioSlow, Conns: 5, Slow: 2, Events: 20, Size: 100, Rate: 1000, Drain: 100 * time.Millisecond})
	if res.Slow == nil || res.Slow.Conns != 2 || res.Slow.StillOpen != 2 || res.Slow.Events != 2*20 {
		t.Fatalf("slow %+v", res.Slow)
	}
	if res.Complete {
		t.Error("slow clients left open should make the run incomplete")
	}
	if !res.Delivery.Complete || res.Delivery.Unique != 5*20 {
		t.Errorf("fast delivery %+v", res.Delivery)
	}
}

// TestEndToEndCluster spreads connections and publishers over two nodes,
// sums the server's CPU over two pids, and counts a fake Redis's commands.
func TestEndToEndCluster(t *testing.T) {
	f, srvs := newFakeCluster(t, 2)
	rd := newFakeRedis(t, func() map[string]int64 {
		f.mu.Lock()
		defer f.mu.Unlock()
		return map[string]int64{"publish": int64(f.events), "hset": 1}
	})
	var urls []string
	for _, s := range srvs {
		urls = append(urls, "ws"+strings.TrimPrefix(s.URL, "http"))
	}
	o := Options{Scenario: ScenarioFanout, URL: strings.Join(urls, ","), Conns: 20, Events: 40, Publishers: 4,
		PIDs: []int{os.Getpid(), os.Getpid()}, RedisAddr: rd.ln.Addr().String(), Timeout: time.Minute}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Delivery.Unique != 20*40 {
		t.Fatalf("delivery %+v, errors %v", res.Delivery, res.Errors)
	}
	if fmt.Sprint(res.Connections.PerNode) != "[10 10]" || res.Publish.Endpoints != 2 {
		t.Errorf("per node %v, endpoints %d", res.Connections.PerNode, res.Publish.Endpoints)
	}
	f.mu.Lock()
	for _, s := range srvs {
		host := strings.TrimPrefix(s.URL, "http://")
		if f.connsAt[host] != 10 || f.triggersAt[host] != 20 {
			t.Errorf("node %s: %d connections, %d triggers; want 10, 20", host, f.connsAt[host], f.triggersAt[host])
		}
	}
	f.mu.Unlock()
	if res.Server == nil || len(res.Server.PIDs) != 2 || len(res.ServerNodes) != 2 ||
		res.Server.CPUSeconds != res.ServerNodes[0].CPUSeconds+res.ServerNodes[1].CPUSeconds {
		t.Errorf("server %+v, nodes %+v", res.Server, res.ServerNodes)
	}
	r := res.Redis
	if r == nil || r.Error != "" || r.Commands != 40 || r.ByCommand["publish"] != 40 || r.PerUnit != 1 || r.Unit != "published event" {
		t.Fatalf("redis %+v", r)
	}
	var table strings.Builder
	WriteTable(&table, res)
	for _, want := range []string{"over 2 nodes: 10 + 10", "2 nodes (pids", "  node 2", "40 commands", "= 1.00/published event", "publish 40 (1.00)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	// Presence: every channel's watchers and churners are on both nodes.
	f.mu.Lock()
	clear(f.connsAt)
	f.mu.Unlock()
	// Two channels on two nodes: by id alone, a channel's members would
	// all be on one node.
	o = Options{Scenario: ScenarioPresence, URL: strings.Join(urls, ","), Conns: 12, PresenceChannels: 2, Churners: 4, Cycles: 3,
		RedisAddr: rd.ln.Addr().String(), Timeout: time.Minute}
	res, err = Run(context.Background(), o)
	if err != nil || !res.Complete {
		t.Fatalf("presence: %v, %+v, %v", err, res.Delivery, res.Errors)
	}
	if fmt.Sprint(res.Connections.PerNode) != "[8 8]" || res.Redis == nil || res.Redis.Unit != "join" {
		t.Errorf("presence per node %v, redis %+v", res.Connections.PerNode, res.Redis)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	presence := 0
	for ch, nodes := range f.subsAt {
		if strings.HasPrefix(ch, "presence-") {
			presence++
			if len(nodes) != 2 {
				t.Errorf("%s had members on %d node(s), want both", ch, len(nodes))
			}
		}
	}
	if presence != 2 {
		t.Errorf("%d presence channels, want 2", presence)
	}
}

// serveCentrifugo is a minimal Centrifugo JSON-protocol endpoint: connect
// with an HS256 token signed with the app secret, then subscribe to public
// channels. It sends a ping along with each subscribe reply, in one frame.
func (f *fakePusher) serveCentrifugo(w http.ResponseWriter, r *http.Request) {
	conn, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.next++
	c := &fakeClient{conn: conn, id: fmt.Sprintf("client-%d", f.next), centrifugo: true}
	f.mu.Unlock()
	defer f.leaveAll(c)
	connected := false
	for {
		msg, err := wsutil.ReadClientText(conn)
		if err != nil {
			conn.Close()
			return
		}
		if string(msg) == "{}" {
			f.mu.Lock()
			f.pongs++
			f.mu.Unlock()
			continue
		}
		var cmd struct {
			ID      int `json:"id"`
			Connect *struct {
				Token string `json:"token"`
			} `json:"connect"`
			Subscribe *struct {
				Channel string `json:"channel"`
			} `json:"subscribe"`
		}
		if json.Unmarshal(msg, &cmd) != nil || cmd.ID == 0 {
			ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(3501, "bad request")))
			conn.Close()
			return
		}
		switch {
		case cmd.Connect != nil:
			if !validFakeToken(cmd.Connect.Token, "app-secret") {
				ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(3500, "invalid token")))
				conn.Close()
				return
			}
			connected = true
			c.send([]byte(fmt.Sprintf(`{"id":%d,"connect":{"client":"%s","version":"0","ping":25,"pong":true}}`, cmd.ID, c.id)))
		case cmd.Subscribe != nil && connected:
			f.mu.Lock()
			if f.subs[cmd.Subscribe.Channel] == nil {
				f.subs[cmd.Subscribe.Channel] = map[*fakeClient]string{}
			}
			f.subs[cmd.Subscribe.Channel][c] = ""
			f.mu.Unlock()
			c.send([]byte(fmt.Sprintf(`{"id":%d,"subscribe":{}}`+"\n{}", cmd.ID)))
		default:
			c.send([]byte(fmt.Sprintf(`{"id":%d,"error":{"code":107,"message":"bad request"}}`, cmd.ID)))
		}
	}
}

// centrifugoPub is a publication push: the data as JSON when it is JSON,
// the Pusher event name in tags.event.
func centrifugoPub(ch, event, data string) []byte {
	b := []byte(`{"push":{"channel":`)
	b = appendJSONString(b, ch)
	b = append(b, `,"pub":{"data":`...)
	if json.Valid([]byte(data)) {
		b = append(b, data...)
	} else {
		b = appendJSONString(b, data)
	}
	b = append(b, `,"tags":{"event":`...)
	b = appendJSONString(b, event)
	return append(b, `}}}}`...)
}

func validFakeToken(tok, secret string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) != parts[2] {
		return false
	}
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var header struct{ Alg string }
	var claims struct {
		Sub string
		Exp int64
	}
	if json.Unmarshal(h, &header) != nil || json.Unmarshal(p, &claims) != nil {
		return false
	}
	return header.Alg == "HS256" && claims.Sub != "" && claims.Exp > time.Now().Unix()
}

func TestEndToEndCentrifugoFanout(t *testing.T) {
	for _, rd := range readers() {
		t.Run(rd, func(t *testing.T) {
			f, srv := newFakePusher(t)
			res := runAgainst(t, srv, Options{Scenario: ScenarioFanout, Protocol: ProtocolCentrifugo, Reader: rd,
				Conns: 20, Events: 60, Publishers: 3, Concurrency: 5})
			d := res.Delivery
			if !res.Complete || !d.Complete || d.Unique != 20*60 || d.Missing != 0 || res.Latency.Count != 20*60 {
				t.Fatalf("result %+v, delivery %+v, errors %v", res, d, res.Errors)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.pongs != 20 {
				t.Errorf("%d pongs, want one per connection", f.pongs)
			}
		})
	}
}

func TestEndToEndCentrifugoChannels(t *testing.T) {
	_, srv := newFakePusher(t)
	res := runAgainst(t, srv, Options{Scenario: ScenarioChannels, Protocol: ProtocolCentrifugo, Conns: 30, ChannelsPerConn: 3, Events: 4, Publishers: 2})
	if d := res.Delivery; !res.Complete || d.Unique != 30*3*4 {
		t.Fatalf("delivery %+v, errors %v", d, res.Errors)
	}
}

// A token signed with another secret is refused: no connection, and the
// run says so.
func TestEndToEndCentrifugoBadSecret(t *testing.T) {
	_, srv := newFakePusher(t)
	o := Options{Scenario: ScenarioFanout, Protocol: ProtocolCentrifugo, JWTSecret: "wrong",
		URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Conns: 3, Events: 5, DialTimeout: 2 * time.Second, Timeout: time.Minute}
	res, err := Run(context.Background(), o)
	if err == nil || res == nil || res.Complete || res.Connections.Established != 0 || res.Connections.Failed != 3 {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

func TestConnectToken(t *testing.T) {
	tok := connectToken("s3cret", "hb-1", time.Now().Add(time.Minute))
	if !validFakeToken(tok, "s3cret") || validFakeToken(tok, "other") {
		t.Fatalf("token %s", tok)
	}
	if validFakeToken(connectToken("s3cret", "hb-1", time.Now().Add(-time.Minute)), "s3cret") {
		t.Fatal("an expired token passed")
	}
}

func TestCentrifugoOptions(t *testing.T) {
	for _, sc := range []string{ScenarioPresence, ScenarioSlow, ScenarioConnect, ScenarioIdle} {
		o := Options{Scenario: sc, Protocol: ProtocolCentrifugo}
		o.defaults()
		if err := o.validate(); err == nil {
			t.Errorf("%s with centrifugo accepted", sc)
		}
	}
	o := Options{Scenario: ScenarioFanout, Protocol: "mqtt"}
	o.defaults()
	if err := o.validate(); err == nil {
		t.Error("--protocol mqtt accepted")
	}
	o = Options{Scenario: ScenarioFanout, Protocol: ProtocolCentrifugo, URL: "ws://h:1/"}
	o.defaults()
	if err := o.validate(); err != nil || o.wsURL() != "ws://h:1/connection/websocket" || o.JWTSecret != "app-secret" {
		t.Fatalf("%v %s %q", err, o.wsURL(), o.JWTSecret)
	}
}

// The Centrifugo message parser never panics, and counts a subscription
// reply or a connect reply only for what it is.
func FuzzCentrifugoMessage(f *testing.F) {
	for _, s := range []string{`{"id":1,"connect":{"client":"abc","ping":25,"pong":true}}`, `{"id":2,"subscribe":{}}` + "\n{}",
		`{"push":{"channel":"c","pub":{"data":{"hb":"0.1.5"},"tags":{"event":"x"}}}}`, `{"id":3,"error":{"code":103,"message":"x"}}`, "\n\n", `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := &conn{centrifugo: true, fd: -1, wclosed: true, sk: &countSink{}, cfPong: true}
		c.message(msg, 1, new(shard))
		if c.subscribed > bytes.Count(msg, []byte("\n"))+1 {
			t.Fatalf("%d subscriptions from %q", c.subscribed, msg)
		}
	})
}
