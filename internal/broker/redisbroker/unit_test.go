package redisbroker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/testkit/redistest"
	"github.com/redis/rueidis"
)

// logBuf collects a broker's log output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func withLog(l *logBuf) func(*redisbroker.Options) {
	return func(o *redisbroker.Options) { o.Log = slog.New(slog.NewTextHandler(l, nil)) }
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSegsRoundTrip(t *testing.T) {
	for _, parts := range [][]string{
		{}, {""}, {"a", ""}, {"1:a", "b"}, {"a:b", "c:d:e"}, {strings.Repeat("x", 300)}, {"\x00", "ą€😀"},
	} {
		s := redisbroker.Segs(parts...)
		got, err := redisbroker.SplitSegs(s)
		if err != nil || !slices.Equal(got, parts) && len(parts) > 0 {
			t.Errorf("SplitSegs(Segs(%q)) = %q, %v", parts, got, err)
		}
	}
	for _, bad := range []string{"1", ":", "2:a", "01:a", "-1:", "x:a", "1:a2:b"} {
		if _, err := redisbroker.SplitSegs(bad); err == nil {
			t.Errorf("SplitSegs(%q) succeeded", bad)
		}
	}
}

func FuzzSplitSegs(f *testing.F) {
	f.Add("1:a2:bc")
	f.Add("0:")
	f.Add("10:0123456789")
	f.Add("3:ab")
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := redisbroker.SplitSegs(s)
		if err != nil {
			return
		}
		// Every accepted input is the one encoding of its parts.
		if got := redisbroker.Segs(parts...); got != s {
			t.Fatalf("Segs(SplitSegs(%q)) = %q", s, got)
		}
	})
}

// TestKeysUnambiguous: apps and channels whose concatenations coincide get
// keys of their own, and state set through one is not seen through the
// other.
func TestKeysUnambiguous(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	pairs := [][2]string{{"ab", "c"}, {"a", "bc"}, {"a:1:b", "c"}, {"a", "1:bc"}, {"1:a1:b", "c"}, {"", "abc"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		for _, k := range b.Keys(p[0], p[1]) {
			if other, dup := seen[k]; dup {
				t.Fatalf("key %q for both %q and %q", k, other, p)
			}
			seen[k] = p
		}
	}
	ctx := t.Context()
	m := broker.Message{AppID: "a", Channel: "bc", Event: "e", Cache: true}
	if err := b.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.LastEvent(ctx, "ab", "c"); ok || err != nil {
		t.Fatalf("LastEvent of another app's channel: %v, %v", ok, err)
	}
	if _, err := b.Join(ctx, "a", "presence-x", "1.1", broker.Member{UserID: "u"}, 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.MemberCount(ctx, "a:", "presence-x"); n != 0 {
		t.Fatalf("MemberCount of another app = %d", n)
	}
	// A second deployment on the same Redis sees nothing of the first.
	other := newBroker(t, srv, nil, func(o *redisbroker.Options) { o.Prefix = "other" })
	if n, _ := other.MemberCount(ctx, "a", "presence-x"); n != 0 {
		t.Fatalf("MemberCount under another prefix = %d", n)
	}
}

func TestMalformedPayloadsDropped(t *testing.T) {
	srv := redistest.Start(t)
	var logs logBuf
	b := newBroker(t, srv, nil, withLog(&logs))
	var mu sync.Mutex
	var got []broker.Message
	b.SetHandler(func(m broker.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	b.SetLocalCount("app", "ch", 1)
	if err := b.AwaitInterest(t.Context(), "app", "ch"); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, srv)
	good := broker.Message{AppID: "app", Channel: "ch", Event: "ok"}
	wire := broker.AppendWire(nil, &good)
	bad := []string{"", "\x01", "\x02\x00\x00", string(wire[:len(wire)-1]), string(wire) + "x", "\x01\x09\x00"}
	for _, ch := range []string{b.ControlChannel(), b.PubSubChannel("app", "ch")} {
		for _, p := range bad {
			if err := raw.Do(t.Context(), raw.B().Publish().Channel(ch).Message(p).Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Publish(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the good message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	if want := uint64(2 * len(bad)); b.Stats().Malformed != want {
		t.Fatalf("Stats().Malformed = %d, want %d", b.Stats().Malformed, want)
	}
	if n := logs.count("dropping undecodable"); n != 1 {
		t.Fatalf("malformed payloads logged %d times, want once:\n%s", n, logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if !got[0].Equal(&good) {
		t.Fatalf("received %+v", got[0])
	}
}

// TestOutage: while Redis is down operations fail with an error, the
// outage is logged once, and the broker recovers by itself.
func TestOutage(t *testing.T) {
	srv := redistest.Start(t)
	var logs logBuf
	b := newBroker(t, srv, nil, withLog(&logs))
	ctx := t.Context()
	m := broker.Message{AppID: "app", Channel: "ch", Event: "e"}
	if err := b.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Connected", b.Connected)
	srv.Stop(t)
	for range 20 {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := b.Publish(ctx, m)
		cancel()
		if err == nil {
			t.Fatal("Publish with Redis down returned nil")
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("Publish took %v to fail", d)
		}
		// Methods without a context do not block during the outage.
		b.SetLocalCount("app", "ch", 1)
		b.SetLocalUser("app", "u", 1)
	}
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "u"}, 0); err == nil {
		t.Fatal("Join with Redis down returned nil")
	}
	if err := b.Ping(ctx); err == nil {
		t.Fatal("Ping with Redis down returned nil")
	}
	waitFor(t, "not Connected", func() bool { return !b.Connected() })
	if n := logs.count("redis unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs.String())
	}

	srv.Start(t)
	waitFor(t, "Publish to succeed again", func() bool { return b.Publish(ctx, m) == nil })
	waitFor(t, "the interest to be ready again", func() bool { return b.InterestReady("app", "ch") })
	// Each of the client's connections may report the restart once.
	waitFor(t, "a heartbeat", func() bool { return b.Heartbeat(ctx) == nil })
	waitFor(t, "the count to be back", func() bool {
		n, _ := b.SubscriptionCount(ctx, "app", "ch")
		return n == 1
	})
	if n := logs.count("redis reachable again"); n != 1 {
		t.Fatalf("recovery logged %d times, want once:\n%s", n, logs.String())
	}
	if n := logs.count("redis unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs.String())
	}
	if s := b.Stats(); s.Outages != 1 || s.Reconnects != 1 || !s.Connected {
		t.Fatalf("Stats = %+v", s)
	}
}

// TestStartWithRedisDown: New does not wait for Redis; the broker connects
// when Redis comes up.
func TestStartWithRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop(t)
	start := time.Now()
	b := newBroker(t, srv, nil)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("New took %v with Redis down", d)
	}
	b.SetLocalCount("app", "ch", 1)
	err := b.Publish(t.Context(), broker.Message{AppID: "app", Channel: "ch"})
	if !errors.Is(err, redisbroker.ErrNotConnected) {
		t.Fatalf("Publish before the first connection: %v, want ErrNotConnected", err)
	}
	srv.Start(t)
	waitFor(t, "Connected", b.Connected)
	if err := b.AwaitInterest(t.Context(), "app", "ch"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the count", func() bool {
		n, _ := b.SubscriptionCount(t.Context(), "app", "ch")
		return n == 1
	})
}

func TestOptions(t *testing.T) {
	for _, o := range []redisbroker.Options{
		{},
		{URL: "http://secret@host"},
		{URL: "redis://user:hunter2@host:6379/0", Prefix: "a:b"},
		{URL: "redis://host:1/0", NodeTTL: time.Second, Refresh: 2 * time.Second},
		{SentinelMaster: "m"},
	} {
		_, err := redisbroker.New(context.Background(), o)
		if err == nil {
			t.Errorf("New(%+v) succeeded", o)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "secret") {
			t.Errorf("error repeats the URL's secret: %v", err)
		}
	}
	b, err := redisbroker.New(context.Background(), redisbroker.Options{URL: "redis://127.0.0.1:1/0", Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.NodeID()) != 12 {
		t.Errorf("generated NodeID %q", b.NodeID())
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(context.Background()); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// TestLuaSegsAgrees runs the cleanup script's segment parser on Redis.
func TestLuaSegsAgrees(t *testing.T) {
	srv := redistest.Start(t)
	c := rawClient(t, srv)
	script := rueidis.NewLuaScript(redisbroker.LuaSegs + "return segs(ARGV[1])")
	for _, parts := range [][]string{{"a"}, {"", "b"}, {"1:a", "22:b", strings.Repeat("z", 1000)}, {"\x00\xff", "ą€"}} {
		got, err := script.Exec(t.Context(), c, nil, []string{redisbroker.Segs(parts...)}).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, parts) {
			t.Errorf("Lua segs = %q, want %q", got, parts)
		}
	}
}

// TestInterestChurn: a channel's interest toggled fast ends with one
// Redis subscription while the count is above 0 and none at 0.
func TestInterestChurn(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	raw := rawClient(t, srv)
	numsub := func(ch string) int64 {
		m, err := raw.Do(t.Context(), raw.B().PubsubNumsub().Channel(b.PubSubChannel("app", ch)).Build()).ToArray()
		if err != nil || len(m) != 2 {
			t.Fatalf("PUBSUB NUMSUB: %v %v", m, err)
		}
		n, _ := m[1].AsInt64()
		return n
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := "ch-" + string(rune('a'+i))
			for j := range 200 {
				b.SetLocalCount("app", ch, j%2)
			}
			b.SetLocalCount("app", ch, i%2) // even channels end at 0
		}()
	}
	wg.Wait()
	for i := range 8 {
		ch := "ch-" + string(rune('a'+i))
		want := int64(i % 2)
		if want == 1 {
			if err := b.AwaitInterest(t.Context(), "app", ch); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "NUMSUB of "+ch, func() bool { return numsub(ch) == want })
	}
	waitFor(t, "counts", func() bool {
		got, _ := b.Channels(t.Context(), "app", "")
		return len(got) == 4
	})
}

// TestReadyInterestsHoldNoChannel: once Redis confirmed a channel's
// subscription, the node keeps no readiness channel of its own for it, and
// waiters from before and after that are all answered.
func TestReadyInterestsHoldNoChannel(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	const n = 50
	errs := make(chan error, 2*n)
	for i := range n {
		ch := fmt.Sprintf("ch-%d", i)
		b.SetLocalCount("app", ch, 1)
		go func() { errs <- b.AwaitInterest(t.Context(), "app", ch) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if !b.InterestReady("app", fmt.Sprintf("ch-%d", i)) {
			t.Fatalf("ch-%d: not ready after its waiter was answered", i)
		}
	}
	if got := b.OwnReadyChannels(); got != 0 {
		t.Errorf("%d ready interests still hold a channel of their own, want 0", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := b.AwaitInterest(ctx, "app", "ch-0"); err != nil {
		t.Errorf("waiting on a ready channel: %v", err)
	}
	b.SetLocalCount("app", "late", 1)
	if err := b.AwaitInterest(t.Context(), "app", "late"); err != nil {
		t.Fatal(err)
	}
	if got := b.OwnReadyChannels(); got != 0 {
		t.Errorf("after a later channel was ready: %d own channels, want 0", got)
	}
}

// TestCloseDuringOutage: Close with Redis down reports the failed cleanup
// within its context instead of hanging, and the broker is closed.
func TestCloseDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	if _, err := b.Join(t.Context(), "app", "presence-x", "1.1", broker.Member{UserID: "u"}, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Close(ctx); err == nil {
		t.Fatal("Close with Redis down reported success")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := b.Publish(t.Context(), broker.Message{AppID: "app", Channel: "c"}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

// TestRestartWithSameNodeID: a node restarted under a configured NodeID
// after a crash waits for its earlier process's claim of the id to
// expire, within the node TTL, and then drops what that process
// registered.
func TestRestartWithSameNodeID(t *testing.T) {
	srv := redistest.Start(t)
	const ttl = time.Second
	id := func(o *redisbroker.Options) { o.NodeID, o.NodeTTL, o.Refresh = "fixed-node", ttl, ttl/4 }
	old := newBroker(t, srv, nil, id)
	ctx := t.Context()
	if _, err := old.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	old.SetLocalCount("app", "presence-x", 1)
	waitFor(t, "the count", func() bool {
		n, _ := old.SubscriptionCount(ctx, "app", "presence-x")
		return n == 1
	})
	old.Crash()
	crashed := time.Now()

	b := newBroker(t, srv, nil, id)
	waitFor(t, "the restarted node connected", b.Connected)
	if d := time.Since(crashed); d > ttl+time.Second {
		t.Fatalf("the restarted node took %v to take over, want about the node TTL %v", d, ttl)
	}
	if n, err := b.MemberCount(ctx, "app", "presence-x"); err != nil || n != 0 {
		t.Fatalf("MemberCount after the restart = %d, %v; want 0", n, err)
	}
	if n, err := b.SubscriptionCount(ctx, "app", "presence-x"); err != nil || n != 0 {
		t.Fatalf("SubscriptionCount after the restart = %d, %v; want 0", n, err)
	}
}

// TestJoinAfterFailedLeave: a connection whose leave failed (to be retried
// in the background) and that joins the channel again before the retry
// is a new member again, as it would be had the leave gone through: the
// hub announces it only when Join says first.
func TestJoinAfterFailedLeave(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	ctx := t.Context()
	alice := broker.Member{UserID: "alice"}
	if first, err := b.Join(ctx, "app", "presence-x", "1.1", alice, 0); err != nil || !first {
		t.Fatalf("Join = %v, %v", first, err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Leave(gone, "app", "presence-x", "1.1", "alice"); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	first, err := b.Join(ctx, "app", "presence-x", "1.1", alice, 0)
	if err != nil || !first {
		t.Fatalf("Join after the failed leave = %v, %v; want a new member", first, err)
	}
	// The retried leave must not remove the connection that joined again.
	if err := b.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.MemberCount(ctx, "app", "presence-x"); err != nil || n != 1 {
		t.Fatalf("MemberCount = %d, %v; want 1", n, err)
	}
}

// TestOutageJoinsHoldNothing: presence joins refused during an outage, and
// the leaves that undo them, leave nothing for the broker to retry: a
// client subscribing to ever new presence channels while Redis is down
// cannot make the node hold more. A member that did join is still removed
// once Redis is back.
func TestOutageJoinsHoldNothing(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	ctx := t.Context()
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	// Each of the client's connections reports the loss once, and a
	// command that met it may have been applied: those leaves are kept.
	// Past them, commands fail to dial.
	dials := 0
	waitFor(t, "dial errors", func() bool {
		var oe *net.OpError
		_, err := b.Join(ctx, "app", "presence-warmup", "3.3", broker.Member{UserID: "w"}, 0)
		b.Leave(ctx, "app", "presence-warmup", "3.3", "w")
		if errors.As(err, &oe) && oe.Op == "dial" {
			dials++
		} else {
			dials = 0
		}
		return dials == 20
	})
	base := b.PendingLeaves()
	for i := range 200 {
		ch := "presence-" + strconv.Itoa(i)
		if _, err := b.Join(ctx, "app", ch, "2.2", broker.Member{UserID: "mallory"}, 0); err == nil {
			t.Fatal("Join with Redis down succeeded")
		}
		b.Leave(ctx, "app", ch, "2.2", "mallory")
	}
	if n := b.PendingLeaves() - base; n != 0 {
		t.Fatalf("%d leaves of joins that failed wait for a retry", n)
	}
	if _, err := b.Leave(ctx, "app", "presence-x", "1.1", "alice"); err == nil {
		t.Fatal("Leave with Redis down succeeded")
	}
	if n := b.PendingLeaves() - base; n != 1 {
		t.Fatalf("%d more leaves wait for a retry, want alice's", n)
	}
	srv.Start(t)
	waitFor(t, "a heartbeat", func() bool { return b.Heartbeat(ctx) == nil })
	if n, err := b.MemberCount(ctx, "app", "presence-x"); err != nil || n != 0 {
		t.Fatalf("MemberCount after the outage = %d, %v; want 0", n, err)
	}
	if n := b.PendingLeaves(); n != 0 {
		t.Fatalf("%d leaves still pending", n)
	}
}

// TestAwaitInterestAcrossReconnect: waiting for an interest while the
// pub/sub connection is lost and redone is safe (the race detector
// watches) and ends once the subscription is back.
func TestAwaitInterestAcrossReconnect(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	ctx := t.Context()
	b.SetLocalCount("app", "ch", 1)
	if err := b.AwaitInterest(ctx, "app", "ch"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				b.AwaitInterest(ctx, "app", "ch")
				cancel()
			}
		}()
	}
	for range 3 {
		srv.Restart(t)
		waitFor(t, "the interest to be ready again", func() bool { return b.InterestReady("app", "ch") })
	}
	close(stop)
	wg.Wait()
	if err := b.AwaitInterest(ctx, "app", "ch"); err != nil {
		t.Fatal(err)
	}
}

// TestRejoinAnnouncedDespiteFailure: the members a re-registration makes
// new again are announced even when the announcement fails at first: the
// next heartbeat, which finds the connections already recorded, still
// announces them.
func TestRejoinAnnouncedDespiteFailure(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b, acl := brokerAsACLUser(t, srv, raw)
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []broker.Message
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	watcher.SetLocalCount("app", "presence-x", 1)
	if err := watcher.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	// The node's records are lost (as in a restart that lost everything)
	// and it may not publish for a while.
	if err := raw.Do(ctx, raw.B().Del().Key(b.Keys("app", "presence-x")[4:]...).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Do(ctx, raw.B().Zrem().Key("herald:nodes").Member(b.NodeID()).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	acl("-publish")
	if err := b.Heartbeat(ctx); err == nil {
		t.Fatal("Heartbeat without the right to publish succeeded")
	}
	acl("+publish")
	waitFor(t, "a heartbeat", func() bool { return b.Heartbeat(ctx) == nil })
	waitFor(t, "alice announced again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].Kind == broker.KindMemberAdded && got[0].UserID == "alice"
	})
	if n, err := b.MemberCount(ctx, "app", "presence-x"); err != nil || n != 1 {
		t.Fatalf("MemberCount = %d, %v", n, err)
	}
}

// TestRedis62Commands: the broker needs no command newer than Redis 6.2,
// the oldest release it supports. EVAL_RO and EVALSHA_RO came with 7.0; a
// user denied them stands in for a 6.2 server, which lacks them.
func TestRedis62Commands(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	cmd := raw.B().Arbitrary("ACL", "SETUSER", "old").Args("on", ">pw", "~*", "&*", "+@all", "-eval_ro", "-evalsha_ro").Build()
	if err := raw.Do(ctx, cmd).Error(); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, srv, nil, func(o *redisbroker.Options) { o.URL = "redis://old:pw@" + srv.Addr() + "/0" })
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	ms, err := b.Members(ctx, "app", "presence-x")
	if err != nil || len(ms) != 1 || ms[0].UserID != "alice" {
		t.Fatalf("Members = %v, %v", ms, err)
	}
}

// TestRetriedLeaveAnnounced: a failed leave retried at a heartbeat
// announces the member's removal even when the first retry cannot
// publish: the removal is announced if and only if it is made.
func TestRetriedLeaveAnnounced(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b, acl := brokerAsACLUser(t, srv, raw)
	var mu sync.Mutex
	var got []broker.Message
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	watcher.SetLocalCount("app", "presence-x", 1)
	if err := watcher.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Leave(gone, "app", "presence-x", "1.1", "alice"); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	acl("-publish")
	if err := b.Heartbeat(ctx); err == nil {
		t.Fatal("Heartbeat without the right to publish succeeded")
	}
	acl("+publish")
	waitFor(t, "a heartbeat", func() bool { return b.Heartbeat(ctx) == nil })
	waitFor(t, "alice's removal", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].Kind == broker.KindMemberRemoved && got[0].UserID == "alice"
	})
	if n, err := b.MemberCount(ctx, "app", "presence-x"); err != nil || n != 0 {
		t.Fatalf("MemberCount = %d, %v", n, err)
	}
}

// A channel of more members than one HMGET chunk lists them all, in join
// order, each with its own info.
func TestMembersOfALargeChannel(t *testing.T) {
	srv := redistest.Start(t)
	b := newBroker(t, srv, nil)
	ctx := t.Context()
	const n = 2500
	for i := range n {
		m := broker.Member{UserID: fmt.Sprintf("u%d", i)}
		if i%2 == 0 {
			m.Info = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		}
		if _, err := b.Join(ctx, "app", "presence-big", fmt.Sprintf("c%d", i), m, 0); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t, srv)
	if err := raw.Do(ctx, raw.B().Arbitrary("CONFIG", "RESETSTAT").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := b.Members(ctx, "app", "presence-big")
	if err != nil {
		t.Fatal(err)
	}
	// The script reads the infos in chunks: three HMGETs, no HGET per member.
	stats, err := raw.Do(ctx, raw.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, "cmdstat_hget:") || !strings.Contains(stats, "cmdstat_hmget:calls=3,") {
		t.Errorf("reading %d members ran:\n%s", n, stats)
	}
	if len(got) != n {
		t.Fatalf("%d members, want %d", len(got), n)
	}
	for i, m := range got {
		want := ""
		if i%2 == 0 {
			want = fmt.Sprintf(`{"n":%d}`, i)
		}
		if m.UserID != fmt.Sprintf("u%d", i) || string(m.Info) != want {
			t.Fatalf("member %d is %s with %q, want u%d with %q", i, m.UserID, m.Info, i, want)
		}
	}
}

// rawClient is a plain Redis client of the test's own, to look at or change
// what the broker keeps; closed when the test ends.
// brokerAsACLUser is a broker that logs in to srv as the ACL user "node",
// with every right at first, and acl, which sets that user's rules
// (ACL SETUSER node ...) through raw: a test takes rights away to make
// Redis refuse the broker's commands.
func brokerAsACLUser(t *testing.T, srv *redistest.Server, raw rueidis.Client) (*redisbroker.Broker, func(rules ...string)) {
	t.Helper()
	acl := func(rules ...string) {
		t.Helper()
		cmd := raw.B().Arbitrary("ACL", "SETUSER", "node").Args(append([]string{"on", ">pw", "~*", "&*"}, rules...)...).Build()
		if err := raw.Do(t.Context(), cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
	acl("+@all")
	b := newBroker(t, srv, nil, func(o *redisbroker.Options) { o.URL = "redis://node:pw@" + srv.Addr() + "/0" })
	return b, acl
}

func rawClient(t *testing.T, srv *redistest.Server) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestPublishWhileSubscriptionLost: while the node's pub/sub connection
// is lost (Redis dropped it: a restart, its output-buffer limit, CLIENT
// KILL) and not yet subscribed again, a publish to a channel of its own
// subscribers fails rather than succeed and never reach them; once the
// subscriptions are back, publishes are delivered again. A channel the
// node has no subscribers of is published to as before.
func TestPublishWhileSubscriptionLost(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b, acl := brokerAsACLUser(t, srv, raw)
	var mu sync.Mutex
	var got []string
	b.SetHandler(func(m broker.Message) {
		mu.Lock()
		got = append(got, m.Data)
		mu.Unlock()
	})
	received := func(data string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, data)
	}
	b.SetLocalCount("app", "ch", 1)
	if err := b.AwaitInterest(ctx, "app", "ch"); err != nil {
		t.Fatal(err)
	}
	msg := func(ch, data string) broker.Message {
		return broker.Message{Kind: broker.KindEvent, AppID: "app", Channel: ch, Event: "e", Data: data}
	}
	if err := b.Publish(ctx, msg("ch", "before")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first event", func() bool { return received("before") })

	// The subscription connection goes, and cannot be made again for now;
	// the node's other connections still work.
	acl("-subscribe")
	if err := raw.Do(ctx, raw.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node to notice", func() bool { return !b.InterestReady("app", "ch") })
	if err := b.Publish(ctx, msg("ch", "lost")); err == nil {
		time.Sleep(200 * time.Millisecond)
		t.Fatalf("publish while the subscription is lost succeeded; delivered to the node's subscribers: %v", received("lost"))
	}
	// A batch is refused whole: a retry then duplicates nothing.
	if n, err := b.PublishBatch(ctx, []broker.Message{msg("other", "x"), msg("ch", "lost2"), msg("other", "y")}); !errors.Is(err, redisbroker.ErrSubscriptionLost) || n != 0 {
		t.Fatalf("PublishBatch while the subscription is lost = %d, %v; want 0 and ErrSubscriptionLost", n, err)
	}
	// So is one holding a cached event, which goes out one message at a
	// time.
	cached := msg("other", "cached")
	cached.Cache = true
	if n, err := b.PublishBatch(ctx, []broker.Message{cached, msg("ch", "lost3")}); !errors.Is(err, redisbroker.ErrSubscriptionLost) || n != 0 {
		t.Fatalf("PublishBatch with a cached event while the subscription is lost = %d, %v; want 0 and ErrSubscriptionLost", n, err)
	}
	if _, ok, err := b.LastEvent(ctx, "app", "other"); ok || err != nil {
		t.Fatalf("a refused batch's cached event was published: %v, %v", ok, err)
	}
	if err := b.Publish(ctx, broker.Message{Kind: broker.KindTerminate, AppID: "app", UserID: "u"}); !errors.Is(err, redisbroker.ErrSubscriptionLost) {
		t.Fatalf("terminate while the control subscription is lost: %v, want ErrSubscriptionLost", err)
	}
	if err := b.Publish(ctx, msg("other", "elsewhere")); err != nil {
		t.Fatalf("publish to a channel without local subscribers: %v", err)
	}

	acl("+subscribe")
	waitFor(t, "the subscription to be back", func() bool { return b.InterestReady("app", "ch") })
	if err := b.Publish(ctx, msg("ch", "after")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event after the reconnection", func() bool { return received("after") })
}

// TestLeaveAfterStateLost: a member who leaves after Redis lost the
// presence records (it restarted empty) and before the node registered
// them again is still reported as the user's last leave, which the hub
// announces, and as a pending removal for the webhooks: the other
// subscribers and the backend, who had the member in their lists, would
// keep a member who is gone. Not so while another connection of the user
// is in the channel, on this node or counted in Redis. The node registers
// the rest again at once, not at its next heartbeat.
func TestLeaveAfterStateLost(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	var mu sync.Mutex
	var removed []string
	b.SetTransitionHandler(func(tr broker.Transition) {
		if tr.Kind == broker.TransitionMemberRemoved && tr.Epoch > 0 {
			mu.Lock()
			removed = append(removed, tr.UserID)
			mu.Unlock()
		}
	}, nil)
	other := newBroker(t, srv, nil)
	join := func(b *redisbroker.Broker, conn, user string) {
		t.Helper()
		if _, err := b.Join(ctx, "app", "presence-x", conn, broker.Member{UserID: user}, 0); err != nil {
			t.Fatal(err)
		}
	}
	leave := func(conn, user string, want bool) {
		t.Helper()
		if last, err := b.Leave(ctx, "app", "presence-x", conn, user); err != nil || last != want {
			t.Fatalf("Leave of %s's connection %s = %v, %v; want %v", user, conn, last, err, want)
		}
	}
	join(b, "1.1", "alice")
	join(b, "1.2", "alice")
	join(b, "1.3", "bob")
	join(b, "1.4", "carol")
	if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Carol connects through another node meanwhile.
	join(other, "2.1", "carol")

	leave("1.1", "alice", false) // she is still here
	leave("1.2", "alice", true)
	leave("1.4", "carol", false) // she is still on the other node
	mu.Lock()
	got := fmt.Sprint(removed)
	mu.Unlock()
	if got != "[alice]" {
		t.Fatalf("pending removals reported for %s, want [alice]", got)
	}
	// Bob is registered again, and stays, with carol.
	waitFor(t, "bob registered again", func() bool {
		ms, err := b.Members(ctx, "app", "presence-x")
		return err == nil && len(ms) == 2
	})
	ms, _ := b.Members(ctx, "app", "presence-x")
	if ids := []string{ms[0].UserID, ms[1].UserID}; !slices.Contains(ids, "bob") || !slices.Contains(ids, "carol") {
		t.Fatalf("members %v, want bob and carol", ids)
	}
}

// TestRegisteredAgainAfterEmptyRestart: once Redis restarted empty and
// the node subscribed again, the node registers what it holds at once,
// not at its next heartbeat (refresh_interval away): until then the
// cluster would see none of its subscribers and members, and other nodes
// would decide occupations and member lists without them.
func TestRegisteredAgainAfterEmptyRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	b := newBroker(t, srv, nil) // its heartbeat is half an hour away
	b.SetLocalCount("app", "ch", 2)
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the count", func() bool {
		n, _ := b.SubscriptionCount(ctx, "app", "ch")
		return n == 2
	})
	srv.Restart(t)
	waitFor(t, "the interest to be ready again", func() bool { return b.InterestReady("app", "ch") })
	waitFor(t, "the count and the member registered again", func() bool {
		n, err := b.SubscriptionCount(ctx, "app", "ch")
		m, err2 := b.MemberCount(ctx, "app", "presence-x")
		return err == nil && err2 == nil && n == 2 && m == 1
	})
}

// TestOfflineAfterStateLost: a signed-in user whose last connection goes
// after Redis lost the records of the users (it restarted empty) and
// before the node registered them again still goes offline for the
// watchers, who would otherwise keep the user online.
func TestOfflineAfterStateLost(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	watcher := newBroker(t, srv, nil)
	var mu sync.Mutex
	var got []string
	watcher.SetHandler(func(m broker.Message) {
		if m.Kind == broker.KindUserOnline || m.Kind == broker.KindUserOffline {
			mu.Lock()
			got = append(got, fmt.Sprintf("%s:%v", m.UserID, m.Kind == broker.KindUserOnline))
			mu.Unlock()
		}
	})
	events := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, " ")
	}
	// The control channel is subscribed before any channel is.
	watcher.SetLocalCount("app", "w", 1)
	if err := watcher.AwaitInterest(ctx, "app", "w"); err != nil {
		t.Fatal(err)
	}
	b.SetLocalUser("app", "alice", 1)
	b.SetLocalUser("app", "bob", 1)
	waitFor(t, "alice and bob online", func() bool { return events() == "alice:true bob:true" || events() == "bob:true alice:true" })
	mu.Lock()
	got = nil
	mu.Unlock()
	if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Bob is online through another node meanwhile.
	watcher.SetLocalUser("app", "bob", 1)
	waitFor(t, "bob online through the other node", func() bool { return events() == "bob:true" })
	b.SetLocalUser("app", "alice", 0)
	b.SetLocalUser("app", "bob", 0)
	waitFor(t, "alice offline", func() bool { return events() == "bob:true alice:false" })
	time.Sleep(100 * time.Millisecond)
	if e := events(); e != "bob:true alice:false" {
		t.Fatalf("watchers heard %s, want bob online and alice offline only", e)
	}

	// A user online and offline again before the node wrote it is
	// heard of not at all, or online then offline: never offline alone.
	mu.Lock()
	got = nil
	mu.Unlock()
	for i := range 50 {
		u := fmt.Sprintf("u%d", i)
		b.SetLocalUser("app", u, 1)
		b.SetLocalUser("app", u, 0)
	}
	b.SetLocalUser("app", "last", 1)
	waitFor(t, "the last user online", func() bool { return strings.Contains(events(), "last:true") })
	seen := map[string]bool{}
	for _, e := range strings.Fields(events()) {
		u, online, _ := strings.Cut(e, ":")
		if online == "false" && !seen[u] {
			t.Fatalf("%s went offline without having been online: %s", u, events())
		}
		seen[u] = true
	}
}

// TestVacatedAfterStateLost: a channel whose last local subscriber goes
// after Redis lost the counts (it restarted empty) and before the node
// registered them again is still reported vacated, as a pending vacancy,
// unless another node has subscribers of it: the backend would otherwise
// hold the channel occupied for good.
func TestVacatedAfterStateLost(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	var mu sync.Mutex
	var got []string
	b.SetTransitionHandler(func(tr broker.Transition) {
		switch {
		case tr.Kind == broker.TransitionVacated && tr.Epoch > 0:
			mu.Lock()
			got = append(got, "vacated:"+tr.Channel)
			mu.Unlock()
		case tr.Kind == broker.TransitionOccupied:
			mu.Lock()
			got = append(got, "occupied:"+tr.Channel)
			mu.Unlock()
		}
	}, nil)
	events := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(got, " ")
	}
	other := newBroker(t, srv, nil)
	count := func(b *redisbroker.Broker, ch string, want int) {
		t.Helper()
		waitFor(t, "the count of "+ch, func() bool {
			n, err := b.SubscriptionCount(ctx, "app", ch)
			return err == nil && n == want
		})
	}
	b.SetLocalCount("app", "solo", 1)
	b.SetLocalCount("app", "shared", 1)
	count(b, "solo", 1)
	count(b, "shared", 1)
	mu.Lock()
	got = nil
	mu.Unlock()
	if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	other.SetLocalCount("app", "shared", 1)
	count(other, "shared", 1)
	b.SetLocalCount("app", "solo", 0)
	b.SetLocalCount("app", "shared", 0)
	waitFor(t, "solo vacated", func() bool { return events() == "vacated:solo" })
	time.Sleep(100 * time.Millisecond)
	if e := events(); e != "vacated:solo" {
		t.Fatalf("transitions %s, want solo vacated only", e)
	}

	// A channel occupied and vacated again before the node wrote it is
	// reported not at all, or occupied then vacated: never vacated alone.
	mu.Lock()
	got = nil
	mu.Unlock()
	for i := range 50 {
		ch := fmt.Sprintf("c%d", i)
		b.SetLocalCount("app", ch, 1)
		b.SetLocalCount("app", ch, 0)
	}
	b.SetLocalCount("app", "last", 1)
	waitFor(t, "the last channel occupied", func() bool { return strings.Contains(events(), "occupied:last") })
	seen := map[string]bool{}
	for _, e := range strings.Fields(events()) {
		kind, ch, _ := strings.Cut(e, ":")
		if kind == "vacated" && !seen[ch] {
			t.Fatalf("%s vacated without having been occupied: %s", ch, events())
		}
		seen[ch] = true
	}
}

// TestRetriedLeaveAfterStateLost: a leave that failed, retried after
// Redis lost the presence records, still announces the removal of a user
// left with no connection.
func TestRetriedLeaveAfterStateLost(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	var mu sync.Mutex
	var got []broker.Message
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		if m.Kind == broker.KindMemberRemoved { // bob is announced again as added
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		}
	})
	watcher.SetLocalCount("app", "presence-x", 1)
	if err := watcher.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ conn, user string }{{"1.1", "alice"}, {"1.2", "bob"}, {"1.3", "bob"}} {
		if _, err := b.Join(ctx, "app", "presence-x", m.conn, broker.Member{UserID: m.user}, 0); err != nil {
			t.Fatal(err)
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	for _, m := range []struct{ conn, user string }{{"1.1", "alice"}, {"1.2", "bob"}} {
		if _, err := b.Leave(gone, "app", "presence-x", m.conn, m.user); err == nil {
			t.Fatal("Leave with an ended context succeeded")
		}
	}
	if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a heartbeat", func() bool { return b.Heartbeat(ctx) == nil && b.PendingLeaves() == 0 })
	waitFor(t, "alice's removal", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1 && got[0].UserID == "alice"
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("watcher got %+v, want alice's removal only (bob has a connection left)", got)
	}
}

// TestNothingAnnouncedAgainAfterSweep: a node cut off from Redis for
// longer than node_ttl is swept by the others, whose cleanup announces its
// members' removal, its users' offline and its channels' vacancy. What
// the node then finds missing when it is back was removed, not lost: a
// member who left meanwhile (directly, or by a retried leave), a user gone
// offline and a channel vacated are not announced a second time, nor
// recorded as a second pending transition for the webhooks.
func TestNothingAnnouncedAgainAfterSweep(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	// Two nodes are cut off: one with members, one with a subscriber and
	// a user (the members' node registers its state again as soon as a
	// leave finds it missing, which would make the others' changes
	// ordinary ones).
	b := newBroker(t, srv, nil)
	b2 := newBroker(t, srv, nil)
	sweeper := newBroker(t, srv, func() time.Time { return time.Now().Add(2 * time.Hour) })
	var mu sync.Mutex
	var trans, heard []string
	record := func(node string) broker.TransitionHandler {
		return func(tr broker.Transition) {
			if tr.Epoch > 0 {
				mu.Lock()
				trans = append(trans, fmt.Sprintf("%s:%v:%s%s", node, tr.Kind, tr.Channel, tr.UserID))
				mu.Unlock()
			}
		}
	}
	b.SetTransitionHandler(record("b"), nil)
	b2.SetTransitionHandler(record("b2"), nil)
	sweeper.SetTransitionHandler(record("sweeper"), nil)
	sweeper.SetHandler(func(m broker.Message) {
		if m.Kind == broker.KindMemberRemoved || m.Kind == broker.KindUserOffline {
			mu.Lock()
			heard = append(heard, map[broker.Kind]string{broker.KindMemberRemoved: "removed", broker.KindUserOffline: "offline"}[m.Kind]+":"+m.UserID)
			mu.Unlock()
		}
	})
	sweeper.SetLocalCount("app", "presence-x", 1)
	if err := sweeper.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	b2.SetLocalCount("app", "ch", 1)
	b2.SetLocalUser("app", "alice", 1)
	for _, m := range []struct{ conn, user string }{{"1.1", "alice"}, {"1.2", "bob"}} {
		if _, err := b.Join(ctx, "app", "presence-x", m.conn, broker.Member{UserID: m.user}, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the count and the user", func() bool {
		n, err := b.SubscriptionCount(ctx, "app", "ch")
		on, err2 := b.OnlineUsers(ctx, "app", []string{"alice"})
		return err == nil && err2 == nil && n == 1 && len(on) == 1
	})
	// Bob's leave fails, and waits for a retry.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Leave(gone, "app", "presence-x", "1.2", "bob"); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	if err := sweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		mu.Lock()
		defer mu.Unlock()
		a, h := slices.Clone(trans), slices.Clone(heard)
		slices.Sort(a)
		slices.Sort(h)
		return strings.Join(a, " ") + " | " + strings.Join(h, " ")
	}
	want := "sweeper:member_removed:presence-xalice sweeper:member_removed:presence-xbob sweeper:vacated:ch" +
		" | offline:alice removed:alice removed:bob"
	waitFor(t, "the sweep's announcements", func() bool { return snapshot() == want })

	if last, err := b.Leave(ctx, "app", "presence-x", "1.1", "alice"); err != nil || last {
		t.Errorf("Leave after the sweep = %v, %v; want false (the sweep announced the removal)", last, err)
	}
	waitFor(t, "the retried leave", func() bool { return b.Heartbeat(ctx) == nil && b.PendingLeaves() == 0 })
	b2.SetLocalCount("app", "ch", 0)
	b2.SetLocalUser("app", "alice", 0)
	waitFor(t, "the other node written again", func() bool { return b2.Heartbeat(ctx) == nil })
	time.Sleep(300 * time.Millisecond)
	if got := snapshot(); got != want {
		t.Fatalf("after the sweep:\n got %s\nwant %s", got, want)
	}
}

// TestRefusedWritesAnnounceNothing: a count or a user whose write Redis
// refused (an error reply: out of memory, a read-only replica, an ACL)
// was never recorded: when it goes back to 0 before a write succeeds,
// nothing is announced, where a write that may have been applied and
// was lost since would be announced (channel vacated, user offline).
func TestRefusedWritesAnnounceNothing(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	ctx := t.Context()
	b, acl := brokerAsACLUser(t, srv, raw)
	var mu sync.Mutex
	var got []string
	b.SetTransitionHandler(func(tr broker.Transition) {
		if tr.Kind == broker.TransitionVacated || tr.Kind == broker.TransitionOccupied {
			mu.Lock()
			got = append(got, fmt.Sprintf("%v:%s", tr.Kind, tr.Channel))
			mu.Unlock()
		}
	}, nil)
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		if m.Kind == broker.KindUserOnline || m.Kind == broker.KindUserOffline {
			mu.Lock()
			got = append(got, fmt.Sprintf("%v:%s", m.Kind == broker.KindUserOnline, m.UserID))
			mu.Unlock()
		}
	})
	watcher.SetLocalCount("app", "w", 1)
	if err := watcher.AwaitInterest(ctx, "app", "w"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node connected", b.Connected)

	acl("+@all", "-@scripting")
	b.SetLocalCount("app", "ch", 1)
	b.SetLocalUser("app", "alice", 1)
	time.Sleep(300 * time.Millisecond) // the writer tries, and is refused
	b.SetLocalCount("app", "ch", 0)
	b.SetLocalUser("app", "alice", 0)
	acl("+@all")
	b.SetLocalCount("app", "last", 1)
	waitFor(t, "the last channel written", func() bool {
		n, err := watcher.SubscriptionCount(ctx, "app", "last")
		return err == nil && n == 1
	})
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if e := strings.Join(got, " "); e != "occupied:last" {
		t.Fatalf("heard %s, want occupied:last only", e)
	}
}

// TestRetriedLeaveOfUnsureJoin: the leave of a connection whose join
// failed in a way that may have applied it is retried; when the retry
// finds no record, the join was not applied, and nobody is told of a
// removal (nor the backend sent a member_removed) for a user never added.
func TestRetriedLeaveOfUnsureJoin(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	var mu sync.Mutex
	var got []string
	b.SetTransitionHandler(func(tr broker.Transition) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%v:%s", tr.Kind, tr.UserID))
		mu.Unlock()
	}, nil)
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		if m.Kind == broker.KindMemberRemoved {
			mu.Lock()
			got = append(got, "announced:"+m.UserID)
			mu.Unlock()
		}
	})
	watcher.SetLocalCount("app", "presence-x", 1)
	if err := watcher.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	// Mallory's join timed out before it reached Redis, and the leave
	// that undoes it failed too.
	b.MarkUnsure("app", "presence-x", "1.1")
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Leave(gone, "app", "presence-x", "1.1", "mallory"); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	if b.PendingLeaves() != 1 {
		t.Fatal("the leave of an unsure join is not retried")
	}
	waitFor(t, "the retried leave", func() bool { return b.Heartbeat(ctx) == nil && b.PendingLeaves() == 0 })
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 0 {
		t.Fatalf("heard %v for a member never added", got)
	}
}

// TestJoinAfterFailedLeaveAsAnotherUser: a connection whose leave failed
// joins the channel again before the leave was retried, as another user
// (a new subscribe with other channel_data). The join does the leave
// first; the old user, whose last connection that was, is announced as
// removed, or every member would keep them in their list for good.
func TestJoinAfterFailedLeaveAsAnotherUser(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	b := newBroker(t, srv, nil)
	var mu sync.Mutex
	var got []string
	watcher := newBroker(t, srv, nil)
	watcher.SetHandler(func(m broker.Message) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%d %s", m.Kind, m.UserID))
		mu.Unlock()
	})
	watcher.SetLocalCount("app", "presence-x", 1)
	if err := watcher.AwaitInterest(ctx, "app", "presence-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := b.Leave(gone, "app", "presence-x", "1.1", "alice"); err == nil {
		t.Fatal("Leave with an ended context succeeded")
	}
	first, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "bob"}, 0)
	if err != nil || !first {
		t.Fatalf("Join as bob = %v, %v; want a new member", first, err)
	}
	want := fmt.Sprintf("%d alice", broker.KindMemberRemoved)
	waitFor(t, "alice's removal", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got, want)
	})
	members, err := b.Members(ctx, "app", "presence-x")
	if err != nil || len(members) != 1 || members[0].UserID != "bob" {
		t.Fatalf("Members = %+v, %v; want bob alone", members, err)
	}
}
