package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/heraldhq/herald/appauth"
	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
)

const tokenUsage = `herald token channel --socket-id ID --channel NAME [--user-id ID --user-info JSON] [--encryption-master-key BASE64]
       herald token user --socket-id ID --user-id ID [--user-info JSON] [--watchlist ID,ID]
       herald token jwt --sub USER [--channel NAME --client ID] [--ttl 1h] [--info JSON] [--alg HS256|RS256|ES256 --key FILE]
       herald token check TOKEN [--socket-id ID --channel NAME --client ID] [flags]

TOKEN is a JWT, a key:signature auth string, or the JSON an auth endpoint answered.
The app is the one of the usual flags, variables and file (--app ID picks one of several).`

// tokenFlags are the flags of every herald token command.
type tokenFlags struct {
	app, socketID, channel, userID, userInfo, watchlist, masterKey *string
	sub, client, info, alg, keyFile, channelData, userData         *string
	ttl                                                            *time.Duration
}

func (f *tokenFlags) register(fs *flag.FlagSet) {
	f.app = fs.String("app", "", "id of the app to use when the config has several")
	f.socketID = fs.String("socket-id", "", "the Pusher socket id, digits.digits")
	f.channel = fs.String("channel", "", "the channel")
	f.userID = fs.String("user-id", "", "the presence member's or signed-in user's id")
	f.userInfo = fs.String("user-info", "", "the user's user_info, JSON")
	f.watchlist = fs.String("watchlist", "", "the signed-in user's watchlist, comma-separated ids")
	f.masterKey = fs.String("encryption-master-key", "", "base64 of the 32-byte master key of private-encrypted channels (default: $"+config.EnvEncryptionMasterKey+")")
	f.sub = fs.String("sub", "", "the JWT's user (sub)")
	f.client = fs.String("client", "", "the Centrifugo client id a subscription JWT is bound to")
	f.info = fs.String("info", "", "the JWT's info, JSON")
	f.ttl = fs.Duration("ttl", time.Hour, "the JWT's lifetime; 0: no exp")
	f.alg = fs.String("alg", "HS256", "the JWT's algorithm: HS256/384/512 (the app's JWT secret), RS256/384/512 or ES256/384/512 (--key)")
	f.keyFile = fs.String("key", "", "PEM private key file for RS and ES algorithms")
	f.channelData = fs.String("channel-data", "", "check: the channel_data sent with an auth string")
	f.userData = fs.String("user-data", "", "check: the user_data sent with an auth string")
}

// runToken is herald token: it prints what an auth endpoint would answer,
// mints a JWT, or says why a token is not valid.
func runToken(args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return fmt.Errorf("%w\nUsage: %s", flag.ErrHelp, tokenUsage)
		}
		return fmt.Errorf("token: which token? channel, user, jwt or check\nUsage: %s", tokenUsage)
	}
	cmd := args[0]
	var f tokenFlags
	cfg, pos, err := config.LoadCommand("herald token "+cmd+" [flags]", args[1:], getenv, f.register)
	if err != nil {
		return err
	}
	*f.masterKey = orEnv(*f.masterKey, getenv, config.EnvEncryptionMasterKey)
	app, err := pickApp(cfg, *f.app)
	if err != nil {
		return err
	}
	if cmd != "check" && len(pos) > 0 {
		return fmt.Errorf("token %s: unexpected argument %q", cmd, pos[0])
	}
	switch cmd {
	case "channel":
		return tokenChannel(app, &f, out)
	case "user":
		return tokenUser(app, &f, out)
	case "jwt":
		return tokenJWT(app, &f, out)
	case "check":
		if len(pos) != 1 {
			return errors.New("token check: give one token")
		}
		return tokenCheck(cfg, app, &f, pos[0], time.Now(), out)
	}
	return fmt.Errorf("token: unknown command %q: channel, user, jwt or check", cmd)
}

// pickApp is the app named by id, or the only one.
func pickApp(cfg config.Config, id string) (apps.App, error) {
	if id == "" {
		if len(cfg.Apps) == 1 {
			return cfg.Apps[0], nil
		}
		ids := make([]string, len(cfg.Apps))
		for i, a := range cfg.Apps {
			ids[i] = a.ID
		}
		return apps.App{}, fmt.Errorf("%d apps are configured (%s): pick one with --app", len(cfg.Apps), strings.Join(ids, ", "))
	}
	for _, a := range cfg.Apps {
		if a.ID == id {
			return a, nil
		}
	}
	return apps.App{}, fmt.Errorf("no app %q is configured", id)
}

func masterKey(b64 string) ([]byte, error) {
	if b64 == "" {
		return nil, nil
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != 32 {
		return nil, errors.New("--encryption-master-key (or " + config.EnvEncryptionMasterKey + ") must be base64 of 32 bytes (openssl rand -base64 32)")
	}
	return k, nil
}

// orEnv is a flag's value, or the variable's when the flag was not given.
func orEnv(flagValue string, getenv func(string) string, name string) string {
	if flagValue != "" {
		return flagValue
	}
	return getenv(name)
}

// jsonFlag is a flag's JSON text, or nil when it is empty.
func jsonFlag(name, v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, fmt.Errorf("--%s is not JSON: %s", name, v)
	}
	return json.RawMessage(v), nil
}

func printJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

func tokenChannel(app apps.App, f *tokenFlags, out io.Writer) error {
	mk, err := masterKey(*f.masterKey)
	if err != nil {
		return err
	}
	s, err := appauth.NewSigner(app.Key, app.Secret, mk)
	if err != nil {
		return err
	}
	if *f.socketID == "" || *f.channel == "" {
		return errors.New("token channel: --socket-id and --channel are required")
	}
	var m *appauth.Member
	if *f.userID != "" || strings.HasPrefix(*f.channel, "presence-") {
		if *f.userID == "" {
			return errors.New("token channel: a presence channel needs --user-id")
		}
		info, err := jsonFlag("user-info", *f.userInfo)
		if err != nil {
			return err
		}
		m = &appauth.Member{UserID: *f.userID}
		if info != nil {
			m.UserInfo = info
		}
	}
	if m != nil && !strings.HasPrefix(*f.channel, "presence-") {
		return errors.New("token channel: --user-id is for presence channels")
	}
	a, err := s.AuthorizeChannel(*f.socketID, *f.channel, m)
	if errors.Is(err, appauth.ErrNoMasterKey) {
		return errors.New("token channel: private-encrypted channels need --encryption-master-key (or " + config.EnvEncryptionMasterKey + ")")
	}
	if err != nil {
		return err
	}
	return printJSON(out, a)
}

func tokenUser(app apps.App, f *tokenFlags, out io.Writer) error {
	s, err := appauth.NewSigner(app.Key, app.Secret, nil)
	if err != nil {
		return err
	}
	if *f.socketID == "" || *f.userID == "" {
		return errors.New("token user: --socket-id and --user-id are required")
	}
	info, err := jsonFlag("user-info", *f.userInfo)
	if err != nil {
		return err
	}
	u := appauth.User{ID: *f.userID}
	if info != nil {
		u.UserInfo = info
	}
	if *f.watchlist != "" {
		u.Watchlist = strings.Split(*f.watchlist, ",")
	}
	a, err := s.AuthenticateUser(*f.socketID, u)
	if err != nil {
		return err
	}
	return printJSON(out, a)
}

func tokenJWT(app apps.App, f *tokenFlags, out io.Writer) error {
	var key any
	switch {
	case strings.HasPrefix(*f.alg, "HS"):
		if *f.keyFile != "" {
			return errors.New("token jwt: HS algorithms use the app's JWT secret (HERALD_APP_JWT_SECRET, or the app secret), not --key")
		}
		key = []byte(jwtSecret(app))
	default:
		if *f.keyFile == "" {
			return fmt.Errorf("token jwt: %s needs --key, a PEM private key file", *f.alg)
		}
		pem, err := os.ReadFile(*f.keyFile)
		if err != nil {
			return fmt.Errorf("token jwt: %w", err)
		}
		if key, err = appauth.ParsePrivateKey(pem); err != nil {
			return fmt.Errorf("token jwt: %s: %w", *f.keyFile, err)
		}
	}
	s, err := appauth.NewTokenSigner(*f.alg, key)
	if err != nil {
		return err
	}
	info, err := jsonFlag("info", *f.info)
	if err != nil {
		return err
	}
	var infoV any
	if info != nil {
		infoV = info
	}
	now := time.Now()
	var exp time.Time
	if *f.ttl > 0 {
		exp = now.Add(*f.ttl)
	} else if *f.ttl < 0 {
		return errors.New("token jwt: --ttl must not be negative")
	}
	var tok string
	if *f.channel != "" {
		tok, err = s.Subscription(appauth.SubscriptionClaims{Sub: *f.sub, Channel: *f.channel, Client: *f.client, ExpiresAt: exp,
			Info: infoV, Audience: app.JWTAudience, Issuer: app.JWTIssuer}, now)
	} else {
		if *f.client != "" {
			return errors.New("token jwt: --client is for subscription tokens (with --channel)")
		}
		tok, err = s.Connection(appauth.ConnectionClaims{Sub: *f.sub, ExpiresAt: exp, Info: infoV,
			Audience: app.JWTAudience, Issuer: app.JWTIssuer}, now)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

// jwtSecret is the HMAC key Herald verifies the app's JWTs with.
func jwtSecret(app apps.App) string {
	if app.JWTSecret != "" {
		return app.JWTSecret
	}
	return app.Secret
}
