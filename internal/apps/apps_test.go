package apps

import (
	"strings"
	"testing"
	"time"
)

func TestNormalizeDefaults(t *testing.T) {
	var a App
	a.Normalize()
	want := App{
		ActivityTimeout:          120 * time.Second,
		ClientEventRate:          10,
		MaxPresenceMembers:       100,
		MaxPresenceUserInfoBytes: 1024,
		SigninTimeout:            30 * time.Second,
		MaxEventBytes:            10240,
		MaxBatchEvents:           10,
		MaxBodyBytes:             256 * 1024,
		WatchlistLimit:           100,
		MaxChannelNameLength:     200,

		MaxSubscriptionsPerConnection: 1000,
	}
	if a != want {
		t.Errorf("Normalize() of the zero App =\n%+v\nwant\n%+v", a, want)
	}
	if a.MaxConnections != 0 || a.ClientEvents || a.RequireSignin || a.Enabled != nil {
		t.Errorf("Normalize changed a setting without a default: %+v", a)
	}
}

func TestNormalizeKeepsSetValues(t *testing.T) {
	off := false
	a := App{
		ID: "1", Key: "k", Secret: "s", Enabled: &off, ClientEvents: true, MaxConnections: 5,
		ActivityTimeout: 30 * time.Second, ClientEventRate: 3, MaxPresenceMembers: 7,
		MaxPresenceUserInfoBytes: 99, RequireSignin: true, SigninTimeout: time.Second,
		MaxEventBytes: 1, MaxBatchEvents: 2, MaxBodyBytes: 3, WatchlistLimit: 4, MaxChannelNameLength: 164,
		MaxSubscriptionsPerConnection: 5,
	}
	want := a
	a.Normalize()
	if a != want {
		t.Errorf("Normalize changed set values:\n%+v\nwant\n%+v", a, want)
	}
	// Negative values are not defaults: Validate must see them.
	b := App{ID: "1", Key: "k", Secret: "s", MaxEventBytes: -1}
	b.Normalize()
	if b.MaxEventBytes != -1 {
		t.Errorf("Normalize replaced a negative limit with %d", b.MaxEventBytes)
	}
}

func TestIsEnabled(t *testing.T) {
	on, off := true, false
	for _, tt := range []struct {
		enabled *bool
		want    bool
	}{{nil, true}, {&on, true}, {&off, false}} {
		a := App{Enabled: tt.enabled}
		if got := a.IsEnabled(); got != tt.want {
			t.Errorf("IsEnabled with Enabled=%v = %v, want %v", tt.enabled, got, tt.want)
		}
	}
}

func valid() App {
	a := App{ID: "1", Key: "key", Secret: "secret"}
	a.Normalize()
	return a
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*App)
		want   string // substring of the error; "" for none
	}{
		{"valid", func(*App) {}, ""},
		{"activity timeout of 1s", func(a *App) { a.ActivityTimeout = time.Second }, ""},
		{"unlimited connections", func(a *App) { a.MaxConnections = 0 }, ""},
		{"no id", func(a *App) { a.ID = "" }, "app id is empty"},
		{"no key", func(a *App) { a.Key = "" }, "app 1: key is empty"},
		{"no secret", func(a *App) { a.Secret = "" }, "app 1: secret is empty"},
		{"key with a colon", func(a *App) { a.Key = "ab:cd" }, "app 1: key must not contain ':'"},
		{"activity timeout under 1s", func(a *App) { a.ActivityTimeout = 999 * time.Millisecond }, "activity_timeout must be at least 1s"},
		{"negative activity timeout", func(a *App) { a.ActivityTimeout = -time.Minute }, "activity_timeout"},
		{"negative max_connections", func(a *App) { a.MaxConnections = -1 }, "limits must not be negative"},
		{"negative client_event_rate", func(a *App) { a.ClientEventRate = -1 }, "limits must not be negative"},
		{"negative max_presence_members", func(a *App) { a.MaxPresenceMembers = -1 }, "limits must not be negative"},
		{"negative max_presence_user_info_bytes", func(a *App) { a.MaxPresenceUserInfoBytes = -1 }, "limits must not be negative"},
		{"negative max_event_bytes", func(a *App) { a.MaxEventBytes = -1 }, "limits must not be negative"},
		{"negative max_batch_events", func(a *App) { a.MaxBatchEvents = -1 }, "limits must not be negative"},
		{"negative max_body_bytes", func(a *App) { a.MaxBodyBytes = -1 }, "limits must not be negative"},
		{"negative watchlist_limit", func(a *App) { a.WatchlistLimit = -1 }, "limits must not be negative"},
		{"negative max_channel_name_length", func(a *App) { a.MaxChannelNameLength = -1 }, "limits must not be negative"},
		{"negative max_subscriptions_per_connection", func(a *App) { a.MaxSubscriptionsPerConnection = -1 }, "limits must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.change(&a)
			err := a.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate accepted %+v", a)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	list := []App{
		{ID: "1", Key: "key-1", Secret: "s1", MaxPresenceMembers: 5},
		{ID: "2", Key: "key-2", Secret: "s2"},
		{ID: "3", Key: "key-3", Secret: "s3"},
	}
	r, err := NewRegistry(list)
	if err != nil {
		t.Fatal(err)
	}
	all := r.All()
	if len(all) != 3 || all[0].ID != "1" || all[1].ID != "2" || all[2].ID != "3" {
		t.Fatalf("All = %v, want the apps in configuration order", all)
	}
	for _, a := range list {
		byID, byKey := r.ByID(a.ID), r.ByKey(a.Key)
		if byID == nil || byID.Key != a.Key || byID.Secret != a.Secret {
			t.Errorf("ByID(%q) = %+v", a.ID, byID)
		}
		if byKey != byID {
			t.Errorf("ByKey(%q) and ByID(%q) are different apps", a.Key, a.ID)
		}
	}
	if r.ByID("key-1") != nil || r.ByKey("1") != nil || r.ByID("") != nil || r.ByKey("nope") != nil {
		t.Error("lookup found an app under the wrong name")
	}
	// Apps are normalized, explicit values kept.
	if a := r.ByID("1"); a.MaxPresenceMembers != 5 || a.ActivityTimeout != DefaultActivityTimeout || a.MaxChannelNameLength != DefaultMaxChannelNameLength {
		t.Errorf("app 1 = %+v, want normalized with its own member limit", a)
	}
	// The registry holds copies: the caller's slice can change afterwards.
	list[0].Secret = "changed"
	if r.ByID("1").Secret != "s1" {
		t.Error("registry shares memory with the caller's slice")
	}
	if list[1].ActivityTimeout != 0 {
		t.Error("NewRegistry normalized the caller's slice")
	}
}

func TestRegistryErrors(t *testing.T) {
	tests := []struct {
		name string
		list []App
		want string
	}{
		{"empty", nil, "no apps configured"},
		{"duplicate id", []App{{ID: "1", Key: "a", Secret: "s"}, {ID: "1", Key: "b", Secret: "s"}}, `app id "1" defined twice`},
		{"duplicate key", []App{{ID: "1", Key: "a", Secret: "s"}, {ID: "2", Key: "a", Secret: "t"}}, `app key "a" defined twice`},
		{"invalid app", []App{{ID: "1", Key: "a", Secret: "s"}, {ID: "2", Key: "b"}}, "app 2: secret is empty"},
		{"invalid limit", []App{{ID: "1", Key: "a", Secret: "s", ActivityTimeout: time.Millisecond}}, "activity_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegistry(tt.list)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRegistry = %v, %v; want an error containing %q", r, err, tt.want)
			}
			if r != nil {
				t.Error("NewRegistry returned a registry with its error")
			}
		})
	}
}
