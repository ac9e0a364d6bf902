// Package apps is the registry of the applications one Herald serves. Each
// app has its own credentials and limits, and nothing of one app (its
// connections, channels or users) is visible to another.
package apps

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/internal/jwtauth"
)

// Defaults applied by Normalize to zero-valued limits. They follow Pusher's
// published limits where Pusher publishes one.
const (
	DefaultActivityTimeout          = 120 * time.Second
	DefaultClientEventRate          = 10
	DefaultPresenceJoinRate         = 10
	DefaultMaxPresenceMembers       = 100
	DefaultMaxPresenceUserInfoBytes = 1024
	DefaultSigninTimeout            = 30 * time.Second
	DefaultMaxEventBytes            = 10 * 1024
	DefaultMaxBatchEvents           = 10
	DefaultWatchlistLimit           = 100
	DefaultMaxChannelNameLength     = 200
	DefaultMaxEventNameLength       = 200
	DefaultMaxBodyBytes             = 256 * 1024
	// DefaultMaxSubscriptionsPerConnection bounds what one connection can
	// make Herald hold for it: each subscription costs a hub entry and,
	// on a presence channel, a member with its user_info.
	DefaultMaxSubscriptionsPerConnection = 1000
)

// App is one tenant. The zero value of every limit means "the default"; call
// Normalize before use.
type App struct {
	ID     string `yaml:"id"`
	Key    string `yaml:"key"`
	Secret string `yaml:"secret"`

	// Enabled is a pointer so that an omitted key in a file means true.
	Enabled *bool `yaml:"enabled"`
	// ClientEvents allows client-* events on private and presence channels.
	ClientEvents bool `yaml:"client_events"`
	// MaxConnections caps concurrent connections of the app on this node; 0 is unlimited.
	MaxConnections int `yaml:"max_connections"`
	// ActivityTimeout is announced to clients in connection_established; the
	// server pings a client silent for that long.
	ActivityTimeout time.Duration `yaml:"activity_timeout"`
	// ClientEventRate is the number of client events one connection may send per second.
	ClientEventRate int `yaml:"client_event_rate"`
	// PresenceJoinRate is the number of presence channels one connection
	// may join per second, with bursts of PresenceJoinBurst, and one user
	// over all its connections on a node. Every join and the leave it
	// allows are announced to all the channel's members: without a bound,
	// one member subscribing and unsubscribing in a loop sends every other
	// member two events per round, at the pace of its own socket, until
	// the slow ones are cut. It bounds a user's sign-ins on a node too
	// (those that make a connection its first there), each announced to
	// the user's watchers with the close that follows.
	PresenceJoinRate int `yaml:"presence_join_rate"`
	// MaxPresenceMembers is the number of distinct users a presence channel admits.
	MaxPresenceMembers int `yaml:"max_presence_members"`
	// MaxPresenceUserInfoBytes bounds the JSON user_info of one presence member.
	MaxPresenceUserInfoBytes int `yaml:"max_presence_user_info_bytes"`
	// RequireSignin closes (4009) a connection that neither signs in nor joins
	// a private or presence channel within SigninTimeout.
	RequireSignin bool          `yaml:"require_signin"`
	SigninTimeout time.Duration `yaml:"signin_timeout"`
	// MaxEventBytes bounds the data of one event, from the REST API or a client.
	MaxEventBytes int `yaml:"max_event_bytes"`
	// MaxBatchEvents bounds the events of one batch_events request.
	MaxBatchEvents int `yaml:"max_batch_events"`
	// MaxBodyBytes bounds a REST request body.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// WatchlistLimit is the number of watched user ids honoured per sign-in.
	WatchlistLimit int `yaml:"watchlist_limit"`
	// MaxChannelNameLength bounds channel names (the server SDKs use 200).
	MaxChannelNameLength int `yaml:"max_channel_name_length"`
	// MaxSubscriptionsPerConnection is the number of channels one
	// connection may be subscribed to at once; a subscribe beyond it is
	// refused and the connection stays open.
	MaxSubscriptionsPerConnection int `yaml:"max_subscriptions_per_connection"`

	// JWTSecret is the HMAC key of HS256/384/512 tokens (Centrifugo
	// connection and subscription tokens); when empty the app secret is
	// used.
	JWTSecret string `yaml:"jwt_secret"`
	// JWTPublicKey is the path of a PEM file holding an RSA or ECDSA public
	// key, read when the registry is built; tokens signed with it are
	// accepted too (RS256/384/512, or the ES algorithm of the key's curve).
	JWTPublicKey string `yaml:"jwt_public_key"`
	// JWTAudience and JWTIssuer, when set, must match a token's aud and iss.
	JWTAudience string `yaml:"jwt_audience"`
	JWTIssuer   string `yaml:"jwt_issuer"`
	// APIKey is the key of the Centrifugo-style server API; when empty that
	// API refuses the app.
	APIKey string `yaml:"api_key"`
	// ClientPublish allows the publish command of Centrifugo clients.
	ClientPublish bool `yaml:"client_publish"`
	// PusherJWTAuth lets the auth of a Pusher private or presence subscribe
	// be a subscription JWT instead of key:signature.
	PusherJWTAuth bool `yaml:"pusher_jwt_auth"`
	// Webhooks are where the app's webhooks go (see docs/webhooks.md).
	Webhooks []Webhook `yaml:"webhooks"`

	jwt *jwtauth.Verifier
}

// JWT returns the app's token verifier. NewRegistry builds it; it is nil
// only for an App that did not come from a registry.
func (a *App) JWT() *jwtauth.Verifier { return a.jwt }

// buildJWT reads the public key file, if any, and builds the verifier.
func (a *App) buildJWT() error {
	k := jwtauth.Keys{HMAC: []byte(a.JWTSecret), Audience: a.JWTAudience, Issuer: a.JWTIssuer}
	if a.JWTSecret == "" {
		k.HMAC = []byte(a.Secret)
	}
	if a.JWTPublicKey != "" {
		pub, err := ReadPublicKey(a.JWTPublicKey)
		if err != nil {
			return fmt.Errorf("app %s: jwt_public_key: %w", a.ID, err)
		}
		k.Public = pub
	}
	v, err := jwtauth.NewVerifier(k)
	if err != nil {
		return fmt.Errorf("app %s: %w", a.ID, err)
	}
	a.jwt = v
	return nil
}

// ReadPublicKey reads a PEM file holding one RSA or ECDSA public key, as a
// PUBLIC KEY (PKIX) or an RSA PUBLIC KEY (PKCS #1) block.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s is not a PEM file", path)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("%s holds a private key (%s); give the public key only", path, block.Type)
		}
		return nil, fmt.Errorf("%s holds a %s block, not a PUBLIC KEY", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return pub, nil
	}
	return nil, fmt.Errorf("%s holds a %T key; only RSA and ECDSA public keys are supported", path, pub)
}

// IsEnabled reports whether the app accepts connections and requests.
func (a *App) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// Normalize fills zero limits with their defaults.
func (a *App) Normalize() {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setInt := func(n *int, def int) {
		if *n == 0 {
			*n = def
		}
	}
	setDur(&a.ActivityTimeout, DefaultActivityTimeout)
	setDur(&a.SigninTimeout, DefaultSigninTimeout)
	setInt(&a.ClientEventRate, DefaultClientEventRate)
	setInt(&a.PresenceJoinRate, DefaultPresenceJoinRate)
	setInt(&a.MaxPresenceMembers, DefaultMaxPresenceMembers)
	setInt(&a.MaxPresenceUserInfoBytes, DefaultMaxPresenceUserInfoBytes)
	setInt(&a.MaxEventBytes, DefaultMaxEventBytes)
	setInt(&a.MaxBatchEvents, DefaultMaxBatchEvents)
	setInt(&a.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&a.WatchlistLimit, DefaultWatchlistLimit)
	setInt(&a.MaxChannelNameLength, DefaultMaxChannelNameLength)
	setInt(&a.MaxSubscriptionsPerConnection, DefaultMaxSubscriptionsPerConnection)
}

// PresenceJoinBurst is how many presence joins a connection (or a user on
// a node, or sign-ins of one user) may make at once: ten seconds' worth,
// so that a page joining its presence channels together is not refused,
// while a connection that joins and leaves in a loop is held to
// PresenceJoinRate.
func (a *App) PresenceJoinBurst() int { return 10 * a.PresenceJoinRate }

// Validate reports the first thing wrong with a normalized app.
func (a *App) Validate() error {
	switch {
	case a.ID == "":
		return errors.New("app id is empty")
	case a.Key == "":
		return fmt.Errorf("app %s: key is empty", a.ID)
	case a.Secret == "":
		return fmt.Errorf("app %s: secret is empty", a.ID)
	case strings.Contains(a.Key, ":"):
		// Clients send auth tokens as "key:signature", split at the first ':'.
		return fmt.Errorf("app %s: key must not contain ':'", a.ID)
	case a.ActivityTimeout < time.Second:
		return fmt.Errorf("app %s: activity_timeout must be at least 1s", a.ID)
	case a.SigninTimeout < 0:
		// The sign-in deadline would have passed as the connection opens.
		return fmt.Errorf("app %s: signin_timeout must not be negative (0 means the default)", a.ID)
	case a.MaxConnections < 0, a.ClientEventRate < 0, a.PresenceJoinRate < 0, a.MaxPresenceMembers < 0,
		a.MaxPresenceUserInfoBytes < 0, a.MaxEventBytes < 0, a.MaxBatchEvents < 0,
		a.MaxBodyBytes < 0, a.WatchlistLimit < 0, a.MaxChannelNameLength < 0,
		a.MaxSubscriptionsPerConnection < 0:
		return fmt.Errorf("app %s: limits must not be negative", a.ID)
	}
	if err := a.validateBounds(); err != nil {
		return err
	}
	return a.validateWebhooks()
}

// Registry finds apps by id or key. It is built once and then only read, so
// it needs no lock.
type Registry struct {
	byID  map[string]*App
	byKey map[string]*App
	list  []*App
}

// NewRegistry normalizes and validates apps and indexes them. Ids and keys
// must be unique.
func NewRegistry(list []App) (*Registry, error) {
	r := &Registry{byID: map[string]*App{}, byKey: map[string]*App{}}
	apiKeys := map[string]struct{}{}
	secrets := map[string]string{} // secret -> the app's id
	for i := range list {
		a := list[i]
		a.Normalize()
		if err := a.Validate(); err != nil {
			return nil, err
		}
		if err := a.buildJWT(); err != nil {
			return nil, err
		}
		if _, dup := r.byID[a.ID]; dup {
			return nil, fmt.Errorf("app id %q defined twice", a.ID)
		}
		if _, dup := r.byKey[a.Key]; dup {
			return nil, fmt.Errorf("app key %q defined twice", a.Key)
		}
		// A channel authorization signs "socket_id:channel[:channel_data]"
		// and a sign-in "socket_id::user::user_data", neither naming the
		// app, and the key in front of the signature is the client's to
		// choose: with one secret, what one app's backend signs for a
		// socket would authorize that socket in the other app too.
		if other, dup := secrets[a.Secret]; dup {
			return nil, fmt.Errorf("apps %s and %s have the same secret: a channel authorization or sign-in signed for one would be valid in the other", other, a.ID)
		}
		secrets[a.Secret] = a.ID
		if a.APIKey != "" {
			// The server API finds the app by this key alone.
			if _, dup := apiKeys[a.APIKey]; dup {
				return nil, fmt.Errorf("app %s: api_key is another app's too", a.ID)
			}
			apiKeys[a.APIKey] = struct{}{}
		}
		r.byID[a.ID] = &a
		r.byKey[a.Key] = &a
		r.list = append(r.list, &a)
	}
	if len(r.list) == 0 {
		return nil, errors.New("no apps configured")
	}
	// The server API is opened by its api_key alone, and an app key is
	// public: every client connects with it.
	for _, a := range r.list {
		if a.APIKey == "" {
			continue
		}
		if b := r.byKey[a.APIKey]; b != nil {
			return nil, fmt.Errorf("app %s: api_key is app %s's key, which every client of it knows; choose a secret api_key", a.ID, b.ID)
		}
	}
	// A token signed for one app must never be valid in another: apps that
	// verify with the same key can only tell their tokens apart by aud.
	for i, a := range r.list {
		for _, b := range r.list[i+1:] {
			if a.jwt.SharesKey(b.jwt) {
				return nil, fmt.Errorf("apps %s and %s verify JWTs with the same key (jwt_secret, the app secret standing in for it, or jwt_public_key): give each a distinct jwt_audience, or a token of one would be valid in the other", a.ID, b.ID)
			}
		}
	}
	return r, nil
}

// ByID returns the app with this id, or nil.
func (r *Registry) ByID(id string) *App { return r.byID[id] }

// ByKey returns the app with this key, or nil.
func (r *Registry) ByKey(key string) *App { return r.byKey[key] }

// All returns every app in configuration order.
func (r *Registry) All() []*App { return r.list }
