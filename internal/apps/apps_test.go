package apps

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestNormalizeDefaults(t *testing.T) {
	var a App
	a.Normalize()
	want := App{
		ActivityTimeout:          120 * time.Second,
		ClientEventRate:          10,
		PresenceJoinRate:         10,
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
	if !reflect.DeepEqual(a, want) {
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
		ActivityTimeout: 30 * time.Second, ClientEventRate: 3, PresenceJoinRate: 6, MaxPresenceMembers: 7,
		MaxPresenceUserInfoBytes: 99, RequireSignin: true, SigninTimeout: time.Second,
		MaxEventBytes: 1, MaxBatchEvents: 2, MaxBodyBytes: 3, WatchlistLimit: 4, MaxChannelNameLength: 164,
		MaxSubscriptionsPerConnection: 5,
	}
	want := a
	a.Normalize()
	if !reflect.DeepEqual(a, want) {
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
		{"negative presence_join_rate", func(a *App) { a.PresenceJoinRate = -1 }, "limits must not be negative"},
		{"negative max_presence_members", func(a *App) { a.MaxPresenceMembers = -1 }, "limits must not be negative"},
		{"negative max_presence_user_info_bytes", func(a *App) { a.MaxPresenceUserInfoBytes = -1 }, "limits must not be negative"},
		{"negative max_event_bytes", func(a *App) { a.MaxEventBytes = -1 }, "limits must not be negative"},
		{"negative max_batch_events", func(a *App) { a.MaxBatchEvents = -1 }, "limits must not be negative"},
		{"negative max_body_bytes", func(a *App) { a.MaxBodyBytes = -1 }, "limits must not be negative"},
		{"negative watchlist_limit", func(a *App) { a.WatchlistLimit = -1 }, "limits must not be negative"},
		{"negative max_channel_name_length", func(a *App) { a.MaxChannelNameLength = -1 }, "limits must not be negative"},
		{"negative max_subscriptions_per_connection", func(a *App) { a.MaxSubscriptionsPerConnection = -1 }, "limits must not be negative"},
		{"negative signin_timeout", func(a *App) { a.SigninTimeout = -time.Second }, "app 1: signin_timeout must not be negative"},
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
		{"duplicate id", []App{{ID: "1", Key: "a", Secret: "s"}, {ID: "1", Key: "b", Secret: "t"}}, `app id "1" defined twice`},
		// Even with JWT keys of their own: Pusher signatures do not name the app.
		{"shared secret", []App{{ID: "1", Key: "a", Secret: "s", JWTSecret: "j1"}, {ID: "2", Key: "b", Secret: "s", JWTSecret: "j2"}}, "apps 1 and 2 have the same secret"},
		{"shared secret, distinct audiences", []App{{ID: "1", Key: "a", Secret: "s", JWTAudience: "a"}, {ID: "2", Key: "b", Secret: "s", JWTAudience: "b"}}, "apps 1 and 2 have the same secret"},
		{"duplicate key", []App{{ID: "1", Key: "a", Secret: "s"}, {ID: "2", Key: "a", Secret: "t"}}, `app key "a" defined twice`},
		// The server API would open to anyone who can connect a client.
		{"api_key is the app key", []App{{ID: "1", Key: "a", Secret: "s", APIKey: "a"}}, "app 1: api_key is app 1's key"},
		{"api_key is another app's key", []App{{ID: "1", Key: "a", Secret: "s", APIKey: "b"}, {ID: "2", Key: "b", Secret: "t"}}, "app 1: api_key is app 2's key"},
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

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRegistryJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	pkix := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	rsaPath := writePEM(t, "PUBLIC KEY", pkix(&rsaKey.PublicKey))
	ecPath := writePEM(t, "PUBLIC KEY", pkix(&ecKey.PublicKey))
	// Another key: two apps sharing one need distinct audiences.
	rsaKey2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1Path := writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey2.PublicKey))
	privPath := writePEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	edPath := writePEM(t, "PUBLIC KEY", pkix(edKey.Public()))
	certPath := writePEM(t, "CERTIFICATE", []byte("x"))
	notPEM := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(notPEM, []byte("ssh-rsa AAAA"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hs := func(secret string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u"}).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u"}).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	rs2, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "u"}).SignedString(rsaKey2)
	if err != nil {
		t.Fatal(err)
	}

	// The app secret is the HMAC key unless jwt_secret is set.
	r, err := NewRegistry([]App{
		{ID: "1", Key: "k1", Secret: "s1"},
		{ID: "2", Key: "k2", Secret: "s2", JWTSecret: "j2"},
		{ID: "3", Key: "k3", Secret: "s3", JWTPublicKey: rsaPath, JWTAudience: "aud", JWTIssuer: "iss"},
		{ID: "4", Key: "k4", Secret: "s4", JWTPublicKey: ecPath},
		{ID: "5", Key: "k5", Secret: "s5", JWTPublicKey: pkcs1Path},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.All() {
		if a.JWT() == nil {
			t.Fatalf("app %s has no verifier", a.ID)
		}
	}
	if _, err := r.ByID("1").JWT().Connect(hs("s1"), now); err != nil {
		t.Errorf("app secret as HMAC key: %v", err)
	}
	if _, err := r.ByID("2").JWT().Connect(hs("s2"), now); err == nil {
		t.Error("app secret accepted though jwt_secret is set")
	}
	if _, err := r.ByID("2").JWT().Connect(hs("j2"), now); err != nil {
		t.Errorf("jwt_secret: %v", err)
	}
	if _, err := r.ByID("5").JWT().Connect(rs2, now); err != nil {
		t.Errorf("PKCS #1 RSA key: %v", err)
	}
	// Audience and issuer are the app's.
	if _, err := r.ByID("3").JWT().Connect(rs, now); err == nil {
		t.Error("token without aud/iss accepted by an app that requires them")
	}
	if got := strings.Join(r.ByID("4").JWT().Methods(), ","); got != "HS256,HS384,HS512,ES256" {
		t.Errorf("EC app methods %s", got)
	}

	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.pem"), "no such file"},
		{"not PEM", notPEM, "not a PEM file"},
		{"private key", privPath, "private key"},
		{"Ed25519", edPath, "only RSA and ECDSA"},
		{"certificate", certPath, "CERTIFICATE"},
	} {
		_, err := NewRegistry([]App{{ID: "9", Key: "k", Secret: "s", JWTPublicKey: tc.path}})
		if err == nil || !strings.Contains(err.Error(), "app 9: jwt_public_key") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming app 9 and %q", tc.name, err, tc.want)
		}
	}
}

// A token signed for one app must never be valid in another. Apps whose
// verifiers share a key (an HMAC secret, the app secret standing in for
// one, or a public key in any encoding) can only tell their tokens apart
// by audience, so each of them must require a distinct one.
func TestRegistrySharedJWTKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkixPath := writePEM(t, "PUBLIC KEY", der)
	pkcs1Path := writePEM(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey))
	for _, tc := range []struct {
		name string
		a, b App
		ok   bool
	}{
		{"distinct secrets", App{Secret: "s1"}, App{Secret: "s2"}, true},
		{"same jwt_secret", App{Secret: "s1", JWTSecret: "j"}, App{Secret: "s2", JWTSecret: "j"}, false},
		{"jwt_secret is another app's secret", App{Secret: "s1"}, App{Secret: "s2", JWTSecret: "s1"}, false},
		{"same RSA key", App{Secret: "s1", JWTPublicKey: pkixPath}, App{Secret: "s2", JWTPublicKey: pkcs1Path}, false},
		{"one audience only", App{Secret: "s1", JWTPublicKey: pkixPath, JWTAudience: "a"}, App{Secret: "s2", JWTPublicKey: pkixPath}, false},
		{"same audience", App{Secret: "s1", JWTSecret: "j", JWTAudience: "a"}, App{Secret: "s2", JWTSecret: "j", JWTAudience: "a"}, false},
		{"distinct audiences", App{Secret: "s1", JWTPublicKey: pkixPath, JWTAudience: "a"}, App{Secret: "s2", JWTPublicKey: pkcs1Path, JWTAudience: "b"}, true},
	} {
		tc.a.ID, tc.a.Key = "1", "k1"
		tc.b.ID, tc.b.Key = "2", "k2"
		_, err := NewRegistry([]App{tc.a, tc.b})
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "jwt_audience")):
			t.Errorf("%s: err = %v, want one asking for distinct jwt_audience", tc.name, err)
		}
	}
}

// The server API finds the app by its key alone: two apps with one
// api_key would leave the second unreachable and act on the first with
// the requests meant for it.
func TestRegistryDuplicateAPIKey(t *testing.T) {
	_, err := NewRegistry([]App{
		{ID: "1", Key: "k1", Secret: "s1", APIKey: "api"},
		{ID: "2", Key: "k2", Secret: "s2", APIKey: "api"},
	})
	if err == nil || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("err = %v, want one naming api_key", err)
	}
	if _, err := NewRegistry([]App{
		{ID: "1", Key: "k1", Secret: "s1", APIKey: "api1"},
		{ID: "2", Key: "k2", Secret: "s2", APIKey: "api2"},
		{ID: "3", Key: "k3", Secret: "s3"},
		{ID: "4", Key: "k4", Secret: "s4"},
	}); err != nil {
		t.Error(err)
	}
}

// Every limit accepts its upper bound and refuses one more; the bounds
// are far above any deployment's needs and refuse typos (an extra zero,
// bytes for KiB).
func TestValidateBounds(t *testing.T) {
	tests := []struct {
		key string
		set func(a *App, over bool)
	}{
		{"max_connections", func(a *App, over bool) { a.MaxConnections = 10_000_000 + b2i(over) }},
		{"client_event_rate", func(a *App, over bool) { a.ClientEventRate = 10_000 + b2i(over) }},
		{"presence_join_rate", func(a *App, over bool) { a.PresenceJoinRate = 1_000 + b2i(over) }},
		{"max_presence_members", func(a *App, over bool) { a.MaxPresenceMembers = 100_000 + b2i(over) }},
		{"max_presence_user_info_bytes", func(a *App, over bool) { a.MaxPresenceUserInfoBytes = 64<<10 + b2i(over) }},
		{"max_event_bytes", func(a *App, over bool) { a.MaxEventBytes = 4<<20 + b2i(over); a.MaxBodyBytes = 64 << 20 }},
		{"max_batch_events", func(a *App, over bool) { a.MaxBatchEvents = 1_000 + b2i(over) }},
		{"max_body_bytes", func(a *App, over bool) { a.MaxBodyBytes = 64<<20 + b2i(over) }},
		{"watchlist_limit", func(a *App, over bool) { a.WatchlistLimit = 10_000 + b2i(over) }},
		{"max_channel_name_length", func(a *App, over bool) { a.MaxChannelNameLength = 1024 + b2i(over) }},
		{"max_subscriptions_per_connection", func(a *App, over bool) { a.MaxSubscriptionsPerConnection = 10_000 + b2i(over) }},
		{"activity_timeout", func(a *App, over bool) { a.ActivityTimeout = time.Hour + time.Duration(b2i(over)) }},
		{"signin_timeout", func(a *App, over bool) { a.SigninTimeout = time.Hour + time.Duration(b2i(over)) }},
	}
	for _, tt := range tests {
		t.Run(tt.key+" at its bound", func(t *testing.T) {
			a := valid()
			tt.set(&a, false)
			if err := a.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
		t.Run(tt.key+" over its bound", func(t *testing.T) {
			a := valid()
			tt.set(&a, true)
			err := a.Validate()
			if err == nil || !strings.Contains(err.Error(), "app 1: "+tt.key+" ") || !strings.Contains(err.Error(), " is over ") {
				t.Fatalf("Validate = %v, want app 1: %s ... is over ...", err, tt.key)
			}
			var le *LimitError
			if !errors.As(err, &le) || le.App != "1" || le.Key != tt.key {
				t.Fatalf("Validate = %#v, want a *LimitError for app 1's %s", err, tt.key)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// An app's largest event must fit in a REST request, with at least the
// JSON of the request around it.
func TestValidateEventFitsBody(t *testing.T) {
	tests := []struct {
		name   string
		change func(*App)
		want   string
	}{
		{"defaults", func(*App) {}, ""},
		{"body just large enough", func(a *App) { a.MaxEventBytes = 100_000; a.MaxBodyBytes = 100_000 + 32 }, ""},
		{"body one byte short", func(a *App) { a.MaxEventBytes = 100_000; a.MaxBodyBytes = 100_000 + 31 },
			"app 1: max_event_bytes 100000 does not fit in max_body_bytes 100031: a REST request carrying such an event takes at least 100032 bytes"},
		{"the default body under a raised event", func(a *App) { a.MaxEventBytes = 512 << 10 }, "max_body_bytes 262144 (the default)"},
		{"a body lowered under the default event", func(a *App) { a.MaxBodyBytes = 8 << 10 }, "max_event_bytes 10240 (the default) does not fit in max_body_bytes 8192"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valid()
			tt.change(&a)
			err := a.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want it to contain %q", err, tt.want)
			}
			var le *LimitError
			if tt.want != "" && (!errors.As(err, &le) || le.Key != "max_event_bytes") {
				t.Fatalf("Validate = %#v, want a *LimitError for max_event_bytes", err)
			}
		})
	}
}
