package redisbroker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// failedWith waits for b to stop with want.
func failedWith(t *testing.T, b *redisbroker.Broker, want error) {
	t.Helper()
	select {
	case <-b.Failed():
	case <-time.After(10 * time.Second):
		t.Fatalf("the broker did not stop; want %v", want)
	}
	if err := b.Err(); !errors.Is(err, want) || !strings.Contains(err.Error(), `"`+b.NodeID()+`"`) {
		t.Fatalf("Err() = %v, want %v naming node id %q", err, want, b.NodeID())
	}
}

// TestNodeIDInUse: a second process started with the id of a live one
// waits for the id's claim, says so, and gives up with ErrNodeIDInUse
// without touching the first one's state; once the first one crashes, a
// process started with its id takes over within the node TTL.
func TestNodeIDInUse(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	const ttl = time.Second
	id := func(o *redisbroker.Options) { o.NodeID, o.NodeTTL, o.Refresh = "fixed-node", ttl, ttl/4 }
	first := newBroker(t, srv, nil, id)
	if _, err := first.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	second := newBroker(t, srv, nil, id)
	waitFor(t, "the second process waiting for the claim", second.Claiming)
	err := second.Ping(ctx)
	if !errors.Is(err, redisbroker.ErrNotConnected) || !strings.Contains(err.Error(), "claim") {
		t.Fatalf("Ping while waiting for the claim: %v", err)
	}
	failedWith(t, second, redisbroker.ErrNodeIDInUse)
	if d := time.Since(start); d < ttl {
		t.Fatalf("gave up after %v, before a crashed holder's claim could have expired", d)
	}
	if second.Claiming() || second.Connected() {
		t.Fatal("the second process still claiming, or connected, after it gave up")
	}
	if _, err := second.Join(ctx, "app", "presence-x", "2.1", broker.Member{UserID: "bob"}, 0); !errors.Is(err, redisbroker.ErrNodeIDInUse) {
		t.Fatalf("Join of the refused process: %v", err)
	}
	if err := first.Heartbeat(ctx); err != nil {
		t.Fatalf("the first process's heartbeat: %v", err)
	}
	if n, err := first.MemberCount(ctx, "app", "presence-x"); err != nil || n != 1 {
		t.Fatalf("MemberCount after the refused start = %d, %v; want the first process's 1", n, err)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := first.MemberCount(ctx, "app", "presence-x"); err != nil || n != 1 {
		t.Fatalf("MemberCount after the refused process closed = %d, %v; want 1", n, err)
	}

	first.Crash()
	crashed := time.Now()
	third := newBroker(t, srv, nil, id)
	waitFor(t, "the third process connected", third.Connected)
	if d := time.Since(crashed); d > ttl+time.Second {
		t.Fatalf("took over %v after the crash, want about the node TTL %v", d, ttl)
	}
	if err := third.Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := third.MemberCount(ctx, "app", "presence-x"); err != nil || n != 0 {
		t.Fatalf("MemberCount after the takeover = %d, %v; want 0", n, err)
	}
}

// TestRestartAfterCloseWaitsNot: a node closed gives up its claim, and one
// started again under its id does not wait for it (here the node TTL is
// an hour).
func TestRestartAfterCloseWaitsNot(t *testing.T) {
	srv := redistest.Start(t)
	id := func(o *redisbroker.Options) { o.NodeID = "fixed-node" }
	old := newBroker(t, srv, nil, id)
	waitFor(t, "connected", old.Connected)
	if err := old.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, srv, nil, id)
	deadline := time.Now().Add(2 * time.Second)
	for !b.Connected() {
		if b.Claiming() || time.Now().After(deadline) {
			t.Fatal("the restarted node waits for the claim its predecessor gave up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClaimTaken: once another process holds the node id's claim (here
// written over from a plain client), every script that writes the node's
// state refuses, whichever comes first, and the broker stops with
// ErrNodeIDTaken: nothing the other process registered under the id is
// changed, not even by the replaced process's Close.
func TestClaimTaken(t *testing.T) {
	srv := redistest.Start(t)
	raw := rawClient(t, srv)
	for _, tc := range []struct {
		name string
		// write tries a write; it returns the write's error, unless it
		// is async (the writer's).
		write func(ctx context.Context, b *redisbroker.Broker) error
		async bool
	}{
		{"join", func(ctx context.Context, b *redisbroker.Broker) error {
			_, err := b.Join(ctx, "app", "presence-x", "1.2", broker.Member{UserID: "bob"}, 0)
			return err
		}, false},
		{"leave", func(ctx context.Context, b *redisbroker.Broker) error {
			_, err := b.Leave(ctx, "app", "presence-x", "1.1", "alice")
			return err
		}, false},
		{"heartbeat", func(ctx context.Context, b *redisbroker.Broker) error { return b.Heartbeat(ctx) }, false},
		{"count", func(ctx context.Context, b *redisbroker.Broker) error {
			b.SetLocalCount("app", "presence-x", 0)
			return nil
		}, true},
		{"user", func(ctx context.Context, b *redisbroker.Broker) error {
			b.SetLocalUser("app", "alice", 0)
			return nil
		}, true},
		{"close", func(ctx context.Context, b *redisbroker.Broker) error { return b.Close(ctx) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if err := raw.Do(ctx, raw.B().Flushall().Build()).Error(); err != nil {
				t.Fatal(err)
			}
			b := newBroker(t, srv, nil)
			if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
				t.Fatal(err)
			}
			b.SetLocalCount("app", "presence-x", 1)
			b.SetLocalUser("app", "alice", 1)
			online := func() bool {
				u, err := b.OnlineUsers(ctx, "app", []string{"alice"})
				n, err2 := b.SubscriptionCount(ctx, "app", "presence-x")
				return err == nil && err2 == nil && len(u) == 1 && n == 1
			}
			waitFor(t, "the count and the user written", online)
			if err := raw.Do(ctx, raw.B().Set().Key(b.ClaimKey()).Value("another-process").Build()).Error(); err != nil {
				t.Fatal(err)
			}

			if err := tc.write(ctx, b); err != nil && !errors.Is(err, redisbroker.ErrNodeIDTaken) {
				t.Fatalf("the write failed with %v, want ErrNodeIDTaken", err)
			} else if err == nil && !tc.async {
				t.Fatal("the write succeeded")
			}
			failedWith(t, b, redisbroker.ErrNodeIDTaken)
			if err := b.Heartbeat(ctx); !errors.Is(err, redisbroker.ErrNodeIDTaken) {
				t.Fatalf("Heartbeat = %v, want ErrNodeIDTaken", err)
			}
			b.Close(ctx)
			if n, err := b.MemberCount(ctx, "app", "presence-x"); err == nil {
				t.Fatalf("MemberCount through the closed broker: %d", n)
			}
			reader := newBroker(t, srv, nil)
			if n, err := reader.MemberCount(ctx, "app", "presence-x"); err != nil || n != 1 {
				t.Fatalf("MemberCount = %d, %v; want 1: the records are the other process's", n, err)
			}
			if n, err := reader.SubscriptionCount(ctx, "app", "presence-x"); err != nil || n != 1 {
				t.Fatalf("SubscriptionCount = %d, %v; want 1", n, err)
			}
			if u, err := reader.OnlineUsers(ctx, "app", []string{"alice"}); err != nil || len(u) != 1 {
				t.Fatalf("OnlineUsers = %v, %v; want alice", u, err)
			}
			if v, err := raw.Do(ctx, raw.B().Get().Key(b.ClaimKey()).Build()).ToString(); err != nil || v != "another-process" {
				t.Fatalf("the claim = %q, %v; want the other process's", v, err)
			}
		})
	}
}

// TestClaimAfterRedisRestart: Redis restarted empty has lost the claim
// with everything else; the node takes it again and registers what it
// holds, and a second process with its id is refused as before.
func TestClaimAfterRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	b := newBroker(t, srv, nil, func(o *redisbroker.Options) { o.NodeID = "fixed-node" })
	if _, err := b.Join(ctx, "app", "presence-x", "1.1", broker.Member{UserID: "alice"}, 0); err != nil {
		t.Fatal(err)
	}
	b.SetLocalCount("app", "presence-x", 1)
	waitFor(t, "the count", func() bool {
		n, _ := b.SubscriptionCount(ctx, "app", "presence-x")
		return n == 1
	})
	srv.Restart(t)
	raw := rawClient(t, srv)
	waitFor(t, "the claim taken and the node registered again", func() bool {
		claim, err := raw.Do(ctx, raw.B().Get().Key(b.ClaimKey()).Build()).ToString()
		n, err2 := b.SubscriptionCount(ctx, "app", "presence-x")
		m, err3 := b.MemberCount(ctx, "app", "presence-x")
		return err == nil && err2 == nil && err3 == nil && claim == b.Token() && n == 1 && m == 1
	})
	if ms, err := raw.Do(ctx, raw.B().Pttl().Key(b.ClaimKey()).Build()).AsInt64(); err != nil || ms <= 0 {
		t.Fatalf("the claim's PTTL = %d, %v; want it to expire", ms, err)
	}
	if err := b.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	second := newBroker(t, srv, nil, func(o *redisbroker.Options) { o.NodeID = "fixed-node" })
	waitFor(t, "the second process waiting for the claim", second.Claiming)
}
