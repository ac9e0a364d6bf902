package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
)

// The tests in this file check that what one client can make a node hold
// or send is bounded, and that nothing one client sends reaches another in
// a form that breaks it. Each runs on both transports.

func forEachTransport(t *testing.T, fn func(t *testing.T, transport string)) {
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) {
			if tr == "epoll" && runtime.GOOS != "linux" {
				t.Skip("epoll is Linux only")
			}
			fn(t, tr)
		})
	}
}

func startOn(t *testing.T, transport string, a apps.App) *testServer {
	cfg := oneApp(a)
	cfg.Transport = transport
	return startServer(t, cfg)
}

func signinAs(c *wsClient, a apps.App, sid, userData string) {
	c.Send(map[string]any{"event": "pusher:signin", "data": map[string]any{
		"auth": auth.Token(a.Key, a.Secret, auth.UserString(sid, userData)), "user_data": userData}})
}

func subscriptionError(t *testing.T, m frameMsg) (typ string, status int) {
	t.Helper()
	var d struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("subscription_error data %s: %v", m.Data, err)
	}
	return d.Type, d.Status
}

// The 1001st channel of a connection is refused; the connection and its
// 1000 channels live on. The signed-in user's own channel is not counted.
func TestSubscriptionLimitPerConnection(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		a := testApp("1")
		ts := startOn(t, tr, a)
		c, sid := connect(t, ts, a.Key)
		signinAs(c, a, sid, `{"id":"alice"}`)
		c.Expect("pusher:signin_success")

		limit := apps.DefaultMaxSubscriptionsPerConnection
		for i := 0; i < limit; i++ {
			c.Subscribe(fmt.Sprintf("room-%d", i), "", "")
		}
		for i := 0; i < limit; i++ {
			if m := c.Expect("pusher_internal:subscription_succeeded"); m.Channel != fmt.Sprintf("room-%d", i) {
				t.Fatalf("subscription %d confirmed %q", i, m.Channel)
			}
		}
		over := fmt.Sprintf("room-%d", limit)
		c.Subscribe(over, "", "")
		m := c.Expect("pusher:subscription_error")
		if typ, status := subscriptionError(t, m); m.Channel != over || typ != "LimitReached" || status != 403 {
			t.Fatalf("subscription_error %+v %s", m, m.Data)
		}
		if m := c.Expect("pusher:error"); m.Channel != over {
			t.Fatalf("pusher:error for channel %q", m.Channel)
		}
		c.Alive()

		// Joined channels are not new subscriptions, and still deliver.
		c.Subscribe("room-5", "", "")
		c.Expect("pusher_internal:subscription_succeeded")
		c.Subscribe("#server-to-user-alice", "", "")
		c.Expect("pusher_internal:subscription_succeeded")
		publish(t, ts, a.ID, over, "lost", "x")
		publish(t, ts, a.ID, "room-0", "first", "1")
		publish(t, ts, a.ID, fmt.Sprintf("room-%d", limit-1), "last", "2")
		publish(t, ts, a.ID, "#server-to-user-alice", "dm", "3")
		for _, want := range []string{"first", "last", "dm"} {
			if m := c.Read(); m.Event != want {
				t.Fatalf("got %s (%s), want %s", m.Event, m.Channel, want)
			}
		}
		c.ExpectSilence(100 * time.Millisecond)

		// Leaving one channel makes room for another.
		c.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "room-7"}})
		c.Subscribe(over, "", "")
		if m := c.Expect("pusher_internal:subscription_succeeded"); m.Channel != over {
			t.Fatalf("confirmed %q", m.Channel)
		}
	})
}

// A presence user_id over 128 characters is refused, and no member hears
// of it; one of 128 is a member like any other.
func TestPresenceUserIDOver128Refused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		a := testApp("1")
		ts := startOn(t, tr, a)
		ch := "presence-lobby"
		watcher, _, _ := joinPresence(t, ts, a, ch, `{"user_id":"watcher"}`)

		// A number is never refused for its length: it counts as its
		// JavaScript string form, at most 25 characters ("1e+129" for
		// 129 nines).
		for _, cd := range []string{
			`{"user_id":"` + strings.Repeat("m", 129) + `"}`,
			`{"user_id":"` + strings.Repeat("m", 60000) + `"}`,
		} {
			c, sid := connect(t, ts, a.Key)
			c.Subscribe(ch, channelToken(a, sid, ch, cd), cd)
			m := c.Expect("pusher:subscription_error")
			if typ, status := subscriptionError(t, m); typ != "LimitReached" || status != 400 {
				t.Fatalf("%.30s…: subscription_error %s", cd, m.Data)
			}
			c.Expect("pusher:error")
			c.Alive()
			watcher.ExpectSilence(150 * time.Millisecond)
		}

		id128 := strings.Repeat("m", 128)
		_, _, p := joinPresence(t, ts, a, ch, `{"user_id":"`+id128+`"}`)
		if p.Presence.Count != 2 {
			t.Fatalf("count %d after a 128-character member joined", p.Presence.Count)
		}
		var added string
		json.Unmarshal(watcher.Expect("pusher_internal:member_added").Data, &added)
		if !strings.Contains(added, id128) {
			t.Fatalf("member_added %s", added)
		}

		// Sign-in ids are held to the same 128.
		c, sid := connect(t, ts, a.Key)
		signinAs(c, a, sid, `{"id":"`+strings.Repeat("s", 129)+`"}`)
		if code, _ := errorData(t, c.Expect("pusher:error")); code == nil || *code != 4009 {
			t.Fatalf("sign-in with a 129-character id: code %v", code)
		}
		c.Alive()
		signinAs(c, a, sid, `{"id":"`+strings.Repeat("s", 128)+`"}`)
		c.Expect("pusher:signin_success")
	})
}

// A client event whose data is not UTF-8 is refused and reaches nobody:
// relayed in a text frame it would make every receiving pusher-js or ws
// client drop its connection.
func TestClientEventNotUTF8ReachesNobody(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		a := testApp("1")
		ts := startOn(t, tr, a)
		ch := "presence-chat"
		sender, _, _ := joinPresence(t, ts, a, ch, `{"user_id":"sender"}`)
		var peers []*wsClient
		for i := 0; i < 3; i++ {
			p, _, _ := joinPresence(t, ts, a, ch, fmt.Sprintf(`{"user_id":"peer%d"}`, i))
			peers = append(peers, p)
		}
		for _, c := range append(peers, sender) {
			for { // the member_added of those who joined later
				if _, err := c.Next(100 * time.Millisecond); err != nil {
					break
				}
			}
		}
		bad := []byte("{\"event\":\"client-typing\",\"channel\":\"" + ch + "\",\"data\":{\"text\":\"\xff\xfe\xc3\"}}")

		// In a binary frame, the transport passes the bytes up: Herald
		// refuses the event.
		if err := wsutil.WriteClientBinary(sender.Conn, bad); err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			expectOnly(t, p, 200*time.Millisecond)
			p.Alive()
		}
		if code, _ := errorData(t, sender.Expect("pusher:error")); code == nil || *code != 4301 {
			t.Fatalf("binary frame: pusher:error code %v, want 4301", code)
		}
		// The peers still receive what is well formed.
		sender.Send(map[string]any{"event": "client-typing", "channel": ch, "data": map[string]any{"text": "é"}})
		for _, p := range peers {
			if m := p.Expect("client-typing"); string(m.Data) != `{"text":"é"}` || m.UserID != "sender" {
				t.Fatalf("relayed %+v %s", m, m.Data)
			}
		}

		// In a text frame it breaks RFC 6455: the transport may close the
		// sender (1007) itself, and then the peers hear only that it left.
		if err := wsutil.WriteClientText(sender.Conn, bad); err != nil {
			t.Fatal(err)
		}
		m := sender.Read()
		switch {
		case m.Close == 1007:
			for _, p := range peers {
				expectOnly(t, p, 200*time.Millisecond, "pusher_internal:member_removed")
				p.Alive()
			}
		case m.Event == "pusher:error":
			if code, _ := errorData(t, m); code == nil || *code != 4301 {
				t.Fatalf("text frame: pusher:error code %v, want 4301", code)
			}
			for _, p := range peers {
				expectOnly(t, p, 200*time.Millisecond)
				p.Alive()
			}
		default:
			t.Fatalf("text frame: sender got %+v %s, want a 1007 close or pusher:error 4301", m, m.Data)
		}
	})
}

// expectOnly reads what arrives on c for d: only the given events, each at
// most once, in text frames that are UTF-8 (anything else makes pusher-js
// and ws drop the connection).
func expectOnly(t *testing.T, c *wsClient, d time.Duration, allowed ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.Conn.SetReadDeadline(deadline)
		hdr, err := ws.ReadHeader(c.BR)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if err != nil {
			t.Fatalf("peer: %v", err)
		}
		p := make([]byte, hdr.Length)
		if _, err := io.ReadFull(c.BR, p); err != nil {
			t.Fatalf("peer: %v", err)
		}
		if hdr.OpCode == ws.OpText && !utf8.Valid(p) {
			t.Fatalf("peer got a text frame that is not UTF-8, which pusher-js and ws drop the connection for: %q", p)
		}
		var m frameMsg
		if hdr.OpCode != ws.OpText || json.Unmarshal(p, &m) != nil {
			t.Fatalf("peer got opcode %v %q", hdr.OpCode, p)
		}
		i := slices.Index(allowed, m.Event)
		if i < 0 {
			t.Fatalf("peer got %q, want only %v", p, allowed)
		}
		allowed = slices.Delete(slices.Clone(allowed), i, i+1)
	}
}

// dialSmallReceiveBuffer dials with a 4 KiB socket receive buffer, set
// before connecting: shrinking it on an open connection makes the kernel
// drop data it had already made room for, and the connection crawls.
func dialSmallReceiveBuffer(t *testing.T, ts *testServer, path string) *wsClient {
	t.Helper()
	nd := net.Dialer{Control: smallReceiveBuffer}
	return dialWith(t, ws.Dialer{NetDial: nd.DialContext}, ts, path)
}

// A client that sends pusher:ping without end and never reads stays within
// its send-queue bound and is cut off with 4100; the node's heap does not
// grow with what it sent.
func TestPusherPingFloodBounded(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		a := testApp("1")
		ts := startOn(t, tr, a)
		c := dialSmallReceiveBuffer(t, ts, "/app/"+a.Key+"?protocol=7")
		if m := c.Read(); m.Event != "pusher:connection_established" {
			t.Fatalf("first frame %+v", m)
		}

		// 1000 masked pusher:ping frames, written over and over.
		var chunk []byte
		for i := 0; i < 1000; i++ {
			f := ws.MaskFrameInPlace(ws.NewTextFrame([]byte(`{"event":"pusher:ping","data":{}}`)))
			b, err := ws.CompileFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			chunk = append(chunk, b...)
		}
		const floodBytes = 64 << 20
		heap := func() uint64 {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		base := heap()

		var sent atomic.Int64
		stop := make(chan struct{})
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			// A write cut short by its deadline resumes where it stopped:
			// the frames must stay whole.
			off := 0
			for sent.Load() < floodBytes {
				select {
				case <-stop:
					return
				default:
				}
				c.Conn.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := c.Conn.Write(chunk[off:])
				sent.Add(int64(n))
				off = (off + n) % len(chunk)
				var ne net.Error
				if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
					return
				}
			}
		}()

		var peak uint64
		deadline := time.Now().Add(60 * time.Second)
		for ts.hub.SlowConsumers() == 0 {
			if h := heap(); h > peak {
				peak = h
			}
			select {
			case <-writerDone:
				if ts.hub.SlowConsumers() == 0 {
					t.Fatalf("%d MiB of pings sent and the client was not cut off (heap grew by up to %.1f MiB)",
						sent.Load()>>20, float64(int64(peak)-int64(base))/(1<<20))
				}
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("not cut off within 60s, %d MiB of pings sent (heap grew by up to %.1f MiB)",
					sent.Load()>>20, float64(int64(peak)-int64(base))/(1<<20))
			}
		}
		close(stop)
		<-writerDone
		if h := heap(); h > peak {
			peak = h
		}
		growth := int64(peak) - int64(base)
		t.Logf("cut off after %.1f MiB of pings; heap grew by at most %.2f MiB", float64(sent.Load())/(1<<20), float64(growth)/(1<<20))
		if growth > 8<<20 {
			t.Fatalf("heap grew by %.1f MiB while one client flooded pings", float64(growth)/(1<<20))
		}

		// What the kernel already held is still readable, then the close.
		c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			hdr, err := ws.ReadHeader(c.BR)
			if err != nil {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			p := make([]byte, hdr.Length)
			if _, err := io.ReadFull(c.BR, p); err != nil {
				t.Fatalf("connection ended without a close frame: %v", err)
			}
			if hdr.OpCode == ws.OpClose {
				if code := int(p[0])<<8 | int(p[1]); code != 4100 {
					t.Fatalf("closed with %d %q, want 4100", code, p[2:])
				}
				break
			}
		}
		if n := ts.hub.SlowConsumers(); n != 1 {
			t.Fatalf("slow clients counted: %d", n)
		}
	})
}

// The limit is an app setting of the YAML file, like the others.
func TestSubscriptionLimitFromConfigFile(t *testing.T) {
	path := t.TempDir() + "/herald.yaml"
	yaml := "apps:\n  - id: \"5\"\n    key: k5\n    secret: s5\n    max_subscriptions_per_connection: 2\n"
	if err := writeFile(path, yaml); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	c, _ := connect(t, ts, "k5")
	c.Subscribe("one", "", "")
	c.Subscribe("two", "", "")
	c.Subscribe("three", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	c.Expect("pusher_internal:subscription_succeeded")
	if m := c.Expect("pusher:subscription_error"); m.Channel != "three" {
		t.Fatalf("refused %q, want three", m.Channel)
	}
}
