package centrifugo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/hub"
	"github.com/heraldhq/herald/internal/testkit"
)

// gatedBroker holds presence joins and client publications until gate is
// closed, as a slow cluster broker would.
type gatedBroker struct {
	broker.Broker
	gate chan struct{}
}

func (b *gatedBroker) Join(ctx context.Context, appID, ch, conn string, m broker.Member, max int) (bool, error) {
	<-b.gate
	return b.Broker.Join(ctx, appID, ch, conn, m, max)
}

func (b *gatedBroker) Publish(ctx context.Context, m broker.Message) error {
	if m.Event == PublicationEvent {
		<-b.gate
	}
	return b.Broker.Publish(ctx, m)
}

func newGatedNode(t *testing.T, a apps.App) (*testNode, chan struct{}) {
	t.Helper()
	a.ID, a.Key, a.Secret = "1", "key", secret
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	h := hub.New(hub.Config{Broker: &gatedBroker{Broker: broker.NewMemory(0), gate: gate}, OpTimeout: 10 * time.Second})
	clock := testkit.NewClock(start)
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock})
	return &testNode{fe: fe, hub: h, app: reg.ByID(a.ID), clock: clock}, gate
}

// A publication made while a presence subscription waits for its join is
// held and arrives after the subscribe reply and the joiner's own join.
func TestSubscribeReplyBeforePublications(t *testing.T) {
	n, gate := newGatedNode(t, apps.App{})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "join_leave": true, "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	publish(t, n, broker.Message{Channel: "presence-room", Event: "early", Data: "1"})
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("sent before the join completed: %q", got)
	}
	close(gate)
	tc.expect(`{"id":2,"subscribe":{}}`,
		`{"push":{"channel":"presence-room","join":{"info":{"client":"u1","conn_info":{"name":"u1"},"user":"u1"}}}}`,
		`{"push":{"channel":"presence-room","pub":{"data":1,"tags":{"event":"early"}}}}`)
}

// Work a connection queues off the loop is bounded: past hub.MaxPendingOps
// a command is answered 111 at once, and the rest are answered later.
func TestPendingOpsBound(t *testing.T) {
	n, gate := newGatedNode(t, apps.App{ClientPublish: true})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":2,"subscribe":{}}`)
	const sent = hub.MaxPendingOps + 10
	for i := range sent {
		tc.cmd(uint32(10+i), "publish", map[string]any{"channel": "news", "data": i})
	}
	refused := 0
	for _, p := range tc.c.Take() {
		if !strings.Contains(string(p), `"code":111`) {
			t.Fatalf("answered before the broker did: %s", p)
		}
		refused++
	}
	if refused < 8 {
		t.Fatalf("%d refused of %d, want at least 8", refused, sent)
	}
	close(gate)
	var published int
	for _, r := range tc.texts() {
		if strings.Contains(r, `"publish":{}`) {
			published++
		}
	}
	if published != sent-refused {
		t.Fatalf("%d publish replies, want %d", published, sent-refused)
	}
}

// interestBroker is a cluster node that does not receive any channel
// until gate is closed.
type interestBroker struct {
	broker.Broker
	gate chan struct{}
}

func (b *interestBroker) InterestReady(string, string) bool {
	select {
	case <-b.gate:
		return true
	default:
		return false
	}
}

func (b *interestBroker) AwaitInterest(ctx context.Context, _, _ string) error {
	select {
	case <-b.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// On a node that does not receive a token's server-side channels yet, the
// connect reply waits for them, what they publish meanwhile follows it,
// and commands sent with the connect are answered after it.
func TestServerSideChannelsWaitForTheCluster(t *testing.T) {
	a := apps.App{ID: "1", Key: "key", Secret: secret}
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	h := hub.New(hub.Config{Broker: &interestBroker{Broker: broker.NewMemory(0), gate: gate}, OpTimeout: 10 * time.Second})
	clock := testkit.NewClock(start)
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock})
	n := &testNode{fe: fe, hub: h, app: reg.ByID(a.ID), clock: clock}

	tc := n.dial(t)
	tok := token(t, map[string]any{"sub": "u1", "channels": []string{"news"}})
	tc.HandleMessage([]byte(`{"id":1,"connect":{"token":"` + tok + `"}}` + "\n" + `{"id":2,"subscribe":{"channel":"other"}}`))
	tc.HandleMessage([]byte(`{"id":3,"unsubscribe":{"channel":"nothing"}}`))
	publish(t, n, broker.Message{Channel: "news", Event: "early", Data: "1"})
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("sent before the channels flowed: %q", got)
	}
	close(gate)
	got := tc.texts()
	// Replies are matched by id: the subscribe to a channel the node does
	// not receive yet may be answered after a later command.
	if len(got) == 4 && strings.HasPrefix(got[2], `{"id":3`) {
		got[2], got[3] = got[3], got[2]
	}
	want := []string{
		`{"connect":{"client":"` + tc.SocketID() + `","ping":25,"pong":true,"subs":{"news":{}},"version":"herald"},"id":1}`,
		`{"push":{"channel":"news","pub":{"data":1,"tags":{"event":"early"}}}}`,
		`{"id":2,"subscribe":{}}`,
		`{"id":3,"unsubscribe":{}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	publish(t, n, broker.Message{Channel: "news", Event: "later", Data: "2"})
	tc.expect(`{"push":{"channel":"news","pub":{"data":2,"tags":{"event":"later"}}}}`)

	// A client that keeps sending while it waits is cut off.
	gate2 := make(chan struct{})
	defer close(gate2)
	h2 := hub.New(hub.Config{Broker: &interestBroker{Broker: broker.NewMemory(0), gate: gate2}, OpTimeout: 10 * time.Second})
	n2 := &testNode{fe: New(Config{Apps: reg, Hub: h2, Log: slog.New(slog.DiscardHandler), Clock: clock}), hub: h2, app: n.app, clock: clock}
	tc2 := n2.dial(t)
	tc2.cmd(1, "connect", map[string]any{"token": tok})
	for i := range maxHeldMessages + 1 {
		tc2.cmd(uint32(i+2), "presence", map[string]any{"channel": "news"})
	}
	tc2.expectClosed(CloseTooManyRequests, "too many requests")
}

// A server API unsubscribe is a revocation: it must not be lost because
// the client keeps its connection's off-loop work at its bound (here,
// publications the broker has not answered yet).
func TestServerUnsubscribeWithWorkAtItsBound(t *testing.T) {
	n, gate := newGatedNode(t, apps.App{ClientPublish: true})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "news"})
	tc.expect(`{"id":2,"subscribe":{}}`)
	for i := range hub.MaxPendingOps + 1 {
		tc.cmd(uint32(10+i), "publish", map[string]any{"channel": "news", "data": i})
	}
	tc.c.Take()
	if err := n.hub.UnsubscribeUser(t.Context(), n.app.ID, "news", "u1"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	var unsubscribed bool
	for _, r := range tc.texts() {
		unsubscribed = unsubscribed || strings.Contains(r, `"unsubscribe":{"code":2000`)
	}
	if !unsubscribed {
		t.Fatal("no unsubscribe push")
	}
	publish(t, n, broker.Message{Channel: "news", Event: "e", Data: "1"})
	tc.expect()
}

// partlyReady is a cluster node that receives every channel but "news"
// at once, and "news" once gate is closed.
type partlyReady struct{ *interestBroker }

func (b partlyReady) InterestReady(app, ch string) bool {
	return ch != "news" || b.interestBroker.InterestReady(app, ch)
}

func (b partlyReady) AwaitInterest(ctx context.Context, app, ch string) error {
	if ch != "news" {
		return nil
	}
	return b.interestBroker.AwaitInterest(ctx, app, ch)
}

// The commands sent in the same message as a connect whose reply waits
// for the cluster are handled after that reply, like those of the
// messages that follow, even when they could be answered at once (here a
// subscribe to a channel the node already receives): no reply precedes
// the connect reply.
func TestCommandsWithAWaitingConnectFollowItsReply(t *testing.T) {
	a := apps.App{ID: "1", Key: "key", Secret: secret, ClientPublish: true}
	reg, err := apps.NewRegistry([]apps.App{a})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	h := hub.New(hub.Config{Broker: partlyReady{&interestBroker{Broker: broker.NewMemory(0), gate: gate}}, OpTimeout: 10 * time.Second})
	clock := testkit.NewClock(start)
	fe := New(Config{Apps: reg, Hub: h, Log: slog.New(slog.DiscardHandler), Clock: clock})
	n := &testNode{fe: fe, hub: h, app: reg.ByID(a.ID), clock: clock}

	tc := n.dial(t)
	tok := token(t, map[string]any{"sub": "u1", "channels": []string{"news"}})
	tc.HandleMessage([]byte(`{"id":1,"connect":{"token":"` + tok + `"}}` + "\n" +
		`{"id":2,"subscribe":{"channel":"other"}}` + "\n" +
		`{"id":3,"publish":{"channel":"other","data":1}}`))
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("sent before the connect reply: %q", got)
	}
	close(gate)
	tc.expect(
		`{"connect":{"client":"`+tc.SocketID()+`","ping":25,"pong":true,"subs":{"news":{}},"version":"herald"},"id":1}`,
		`{"id":2,"subscribe":{}}`,
		`{"push":{"channel":"other","pub":{"data":1,"info":{"client":"","user":"u1"},"tags":{"event":"publication"}}}}`,
		`{"id":3,"publish":{}}`,
	)
}

// esToken signs claims with ES256, as a backend with an ECDSA key would.
func esToken(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims(claims)).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A token whose check takes a public-key signature (milliseconds for
// ES512, and a message may carry hundreds of them) is checked off the
// transport's loop, which serves many other connections: the command
// waits, with the rest of its message and the messages sent meanwhile,
// and all are handled in order once the check is done.
func TestPublicKeyTokensAreCheckedOffTheLoop(t *testing.T) {
	key, path := p256KeyFile(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n, gate := newGatedNode(t, apps.App{JWTPublicKey: path})
	tc := n.dial(t)
	tc.cmd(1, "connect", map[string]any{"token": esToken(t, key, map[string]any{"sub": "u1"})})
	if r := tc.replies(); len(r) != 1 || r[0]["connect"] == nil {
		t.Fatalf("connect with an ES256 token: %v", r)
	}
	// A presence join the broker holds keeps the connection's off-loop
	// work busy, so that what waits for it can be seen waiting.
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	tc.HandleMessage([]byte(`{"id":3,"subscribe":{"channel":"$x","token":"` + esToken(t, key, map[string]any{"sub": "u1", "channel": "$x"}) + `"}}` + "\n" +
		`{"id":4,"subscribe":{"channel":"$y","token":"` + esToken(t, other, map[string]any{"sub": "u1", "channel": "$y"}) + `"}}`))
	tc.HandleMessage([]byte(`{"id":5,"unsubscribe":{"channel":"none"}}`))
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("answered on the loop: %q", got)
	}
	close(gate)
	tc.expect(`{"id":2,"subscribe":{}}`,
		`{"id":3,"subscribe":{}}`,
		`{"error":{"code":103,"message":"permission denied"},"id":4}`,
		`{"id":5,"unsubscribe":{}}`)
	tc.expectOpen()

	// A validly signed token for another channel still closes 3500.
	tc.cmd(6, "subscribe", map[string]any{"channel": "$z", "token": esToken(t, key, map[string]any{"sub": "u1", "channel": "$x"})})
	tc.replies()
	tc.expectClosed(CloseInvalidToken, "invalid token")
}

// What a client sends while one of its tokens is checked off the loop is
// held up to maxHeldBytes; more closes 3013.
func TestHeldWhileVerifyingIsBounded(t *testing.T) {
	key, path := p256KeyFile(t)
	n, gate := newGatedNode(t, apps.App{JWTPublicKey: path})
	defer close(gate)
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	tc.cmd(3, "subscribe", map[string]any{"channel": "$x", "token": esToken(t, key, map[string]any{"sub": "u1", "channel": "$x"})})
	pong := []byte("{}" + strings.Repeat(" ", 64<<10-2))
	for range maxHeldBytes / (len(pong) + heldOverhead) {
		tc.HandleMessage(pong)
	}
	tc.expectOpen()
	tc.HandleMessage(pong)
	tc.expectClosed(CloseTooManyRequests, "too many requests")
}

// A command that carries more than one request is handled as its first
// request in handle's order, here its subscribe: that subscribe's token,
// not the empty one of the refresh beside it, is the one checked off the
// loop.
func TestTheHandledRequestsTokenIsCheckedOffTheLoop(t *testing.T) {
	key, path := p256KeyFile(t)
	n, gate := newGatedNode(t, apps.App{JWTPublicKey: path})
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	tc.HandleMessage([]byte(`{"id":3,"refresh":{"token":""},"subscribe":{"channel":"$x","token":"` + esToken(t, key, map[string]any{"sub": "u1", "channel": "$x"}) + `"}}`))
	if got := tc.c.Take(); len(got) != 0 {
		t.Fatalf("answered on the loop: %q", got)
	}
	close(gate)
	tc.expect(`{"id":2,"subscribe":{}}`, `{"id":3,"subscribe":{}}`)
	tc.expectOpen()
}

// Each held message counts against maxHeldBytes with what holding it
// costs beyond its bytes: empty messages, sent as fast as the client can,
// are bounded too.
func TestHeldEmptyMessagesAreBounded(t *testing.T) {
	key, path := p256KeyFile(t)
	n, gate := newGatedNode(t, apps.App{JWTPublicKey: path})
	defer close(gate)
	tc := n.connect(t, "u1")
	tc.cmd(2, "subscribe", map[string]any{"channel": "presence-room", "token": token(t, map[string]any{"sub": "u1", "channel": "presence-room"})})
	tc.cmd(3, "subscribe", map[string]any{"channel": "$x", "token": esToken(t, key, map[string]any{"sub": "u1", "channel": "$x"})})
	for range maxHeldBytes/heldOverhead + 1 {
		tc.HandleMessage(nil)
	}
	tc.expectClosed(CloseTooManyRequests, "too many requests")
}

// p256KeyFile makes an ECDSA P-256 key and writes its public half as the
// PEM file an app's jwt_public_key names.
func p256KeyFile(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path
}
