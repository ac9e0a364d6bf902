package server

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	pushersdk "github.com/pusher/pusher-http-go/v5"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/testkit"
)

// These tests drive Herald with the official Go server SDK,
// github.com/pusher/pusher-http-go/v5 (v5.1.1), unmodified: it signs
// subscriptions and sign-ins, triggers, batch-triggers, queries channels
// and users and terminates connections, while raw WebSocket clients check
// what actually arrives.

func goSDK(ts *testServer, a apps.App) *pushersdk.Client {
	return &pushersdk.Client{AppID: a.ID, Key: a.Key, Secret: a.Secret, Host: ts.addr}
}

// sdkAuth asks the SDK to authorize a subscription, as an app's auth
// endpoint would, and returns the auth response.
func sdkAuth(t *testing.T, c *pushersdk.Client, socketID, channel string, member *pushersdk.MemberData) (authTok, channelData string) {
	t.Helper()
	params := []byte(url.Values{"socket_id": {socketID}, "channel_name": {channel}}.Encode())
	var res []byte
	var err error
	if member != nil {
		res, err = c.AuthorizePresenceChannel(params, *member)
	} else {
		res, err = c.AuthorizePrivateChannel(params)
	}
	if err != nil {
		t.Fatalf("authorize %s: %v", channel, err)
	}
	var out struct {
		Auth        string `json:"auth"`
		ChannelData string `json:"channel_data"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		t.Fatal(err)
	}
	return out.Auth, out.ChannelData
}

// restPost sends a signed POST to the REST API and returns the status.
func restPost(t *testing.T, ts *testServer, a apps.App, path, body string) int {
	t.Helper()
	status, _ := testkit.REST(t, ts.addr, a, "POST", path, nil, body)
	return status
}

func dataString(t *testing.T, m frameMsg) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatalf("event data %s is not a JSON string", m.Data)
	}
	return s
}

func TestGoSDKTriggers(t *testing.T) {
	a := apps.App{ID: "7", Key: "go-key", Secret: "go-secret"}
	ts := startServer(t, oneApp(a))
	sdk := goSDK(ts, a)

	pub, pubID := connect(t, ts, a.Key)
	pub.Subscribe("news", "", "")
	pub.Expect("pusher_internal:subscription_succeeded")
	priv, privID := connect(t, ts, a.Key)
	tok, _ := sdkAuth(t, sdk, privID, "private-desk", nil)
	priv.Subscribe("private-desk", tok, "")
	priv.Expect("pusher_internal:subscription_succeeded")
	priv.Subscribe("news", "", "")
	priv.Expect("pusher_internal:subscription_succeeded")

	if err := sdk.Trigger("news", "hello", map[string]string{"a": "b"}); err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	for _, c := range []*wsClient{pub, priv} {
		if m := c.Expect("hello"); m.Channel != "news" || dataString(t, m) != `{"a":"b"}` {
			t.Fatalf("received %+v", m)
		}
	}

	if err := sdk.TriggerMulti([]string{"news", "private-desk"}, "both", "plain text"); err != nil {
		t.Fatalf("TriggerMulti: %v", err)
	}
	if m := pub.Expect("both"); dataString(t, m) != "plain text" {
		t.Fatalf("received %+v", m)
	}
	got := map[string]bool{}
	for range 2 {
		got[priv.Expect("both").Channel] = true
	}
	if !got["news"] || !got["private-desk"] {
		t.Fatalf("the private client got the multi-channel event on %v", got)
	}

	if err := sdk.TriggerExclusive("news", "not-you", "x", pubID); err != nil {
		t.Fatalf("TriggerExclusive: %v", err)
	}
	priv.Expect("not-you")
	pub.Alive() // the pong comes back with no not-you before it
	pub.ExpectSilence(100e6)

	info := "subscription_count"
	res, err := sdk.TriggerWithParams("news", "counted", "x", pushersdk.TriggerParams{Info: &info})
	if err != nil {
		t.Fatalf("TriggerWithParams: %v", err)
	}
	if n := res.Channels["news"].SubscriptionCount; n == nil || *n != 2 {
		t.Fatalf("subscription_count = %v, want 2", n)
	}

	batch, err := sdk.TriggerBatch([]pushersdk.Event{
		{Channel: "news", Name: "b1", Data: "one"},
		{Channel: "private-desk", Name: "b2", Data: map[string]int{"n": 2}, Info: &info},
	})
	if err != nil {
		t.Fatalf("TriggerBatch: %v", err)
	}
	if len(batch.Batch) != 2 || batch.Batch[1].SubscriptionCount == nil || *batch.Batch[1].SubscriptionCount != 1 {
		t.Fatalf("batch info = %+v", batch)
	}
	pub.Expect("b1")
	if m := priv.Expect("b2"); dataString(t, m) != `{"n":2}` {
		t.Fatalf("received %+v", m)
	}

	// A refused request surfaces as an SDK error and delivers nothing.
	bad := *sdk
	bad.Secret = "wrong"
	if err := bad.Trigger("news", "forged", "x"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Trigger with a wrong secret: err = %v, want a 401", err)
	}
	pub.Alive()
}

func TestGoSDKQueries(t *testing.T) {
	a := apps.App{ID: "8", Key: "q-key", Secret: "q-secret"}
	ts := startServer(t, oneApp(a))
	sdk := goSDK(ts, a)

	for i, user := range []string{"ann", "bob", "ann"} {
		c, id := connect(t, ts, a.Key)
		tok, data := sdkAuth(t, sdk, id, "presence-room", &pushersdk.MemberData{UserID: user, UserInfo: map[string]string{"n": user}})
		c.Subscribe("presence-room", tok, data)
		c.Expect("pusher_internal:subscription_succeeded")
		if i == 0 {
			c.Subscribe("lobby", "", "")
			c.Expect("pusher_internal:subscription_succeeded")
		}
	}

	all, err := sdk.Channels(pushersdk.ChannelsParams{})
	if err != nil {
		t.Fatalf("Channels: %v", err)
	}
	if len(all.Channels) != 2 {
		t.Fatalf("Channels = %+v, want lobby and presence-room", all.Channels)
	}
	prefix, userCount := "presence-", "user_count"
	pres, err := sdk.Channels(pushersdk.ChannelsParams{FilterByPrefix: &prefix, Info: &userCount})
	if err != nil {
		t.Fatalf("Channels(presence-): %v", err)
	}
	if len(pres.Channels) != 1 || pres.Channels["presence-room"].UserCount != 2 {
		t.Fatalf("presence channels = %+v, want presence-room with 2 users", pres.Channels)
	}
	if _, err := sdk.Channels(pushersdk.ChannelsParams{Info: &userCount}); err == nil {
		t.Fatal("user_count without a presence- prefix was accepted")
	}

	both := "user_count,subscription_count"
	ch, err := sdk.Channel("presence-room", pushersdk.ChannelParams{Info: &both})
	if err != nil {
		t.Fatalf("Channel: %v", err)
	}
	if !ch.Occupied || ch.UserCount != 2 || ch.SubscriptionCount != 3 {
		t.Fatalf("Channel = %+v, want occupied, 2 users, 3 subscriptions", ch)
	}
	empty, err := sdk.Channel("nobody", pushersdk.ChannelParams{})
	if err != nil || empty.Occupied {
		t.Fatalf("Channel(nobody) = %+v, %v", empty, err)
	}

	users, err := sdk.GetChannelUsers("presence-room")
	if err != nil {
		t.Fatalf("GetChannelUsers: %v", err)
	}
	if len(users.List) != 2 || users.List[0].ID != "ann" || users.List[1].ID != "bob" {
		t.Fatalf("users = %+v, want ann and bob", users.List)
	}
	if _, err := sdk.GetChannelUsers("lobby"); err == nil {
		t.Fatal("users of a public channel were listed")
	}
}

func TestGoSDKUsers(t *testing.T) {
	a := apps.App{ID: "9", Key: "u-key", Secret: "u-secret"}
	ts := startServer(t, oneApp(a))
	sdk := goSDK(ts, a)

	signin := func(user string) *wsClient {
		c, id := connect(t, ts, a.Key)
		res, err := sdk.AuthenticateUser([]byte("socket_id="+id), map[string]any{"id": user})
		if err != nil {
			t.Fatalf("AuthenticateUser: %v", err)
		}
		c.Send(map[string]any{"event": "pusher:signin", "data": json.RawMessage(res)})
		c.Expect("pusher:signin_success")
		return c
	}
	ann1, ann2, bob := signin("ann"), signin("ann"), signin("bob")

	if err := sdk.SendToUser("ann", "note", map[string]string{"for": "ann"}); err != nil {
		t.Fatalf("SendToUser: %v", err)
	}
	for _, c := range []*wsClient{ann1, ann2} {
		if m := c.Expect("note"); m.Channel != "#server-to-user-ann" || dataString(t, m) != `{"for":"ann"}` {
			t.Fatalf("received %+v", m)
		}
	}
	bob.Alive()
	bob.ExpectSilence(100e6)

	// pusher-http-go v5.1.1 has no terminate call; the request is signed
	// here exactly as the SDKs that have one (pusher 5.x on npm) sign it.
	if status := restPost(t, ts, a, "/apps/"+a.ID+"/users/ann/terminate_connections", "{}"); status != 200 {
		t.Fatalf("terminate_connections: status %d", status)
	}
	for _, c := range []*wsClient{ann1, ann2} {
		if code := c.ExpectClose(); code != 4009 {
			t.Fatalf("terminated connection closed with %d, want 4009", code)
		}
	}
	bob.Alive()
}
