package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authgate/authgate/authcore"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
)

const userUsage = `usage: caddy authgate user <command> (--redis URL [--prefix P] | --file PATH) [flags]
       authgate user ...          (the same, in the binary built from cmd/authgate)

Manages the users of "users store" (kept in Redis: a change is seen at once
by every gateway, with no reload) or of a users file (the server reads it
at start and on reload, and never writes it). Passwords are read from the
terminal without echo, or as one line of standard input; never from the
command line, where other users and shell history could see them.

commands:
  add     --id ID --email EMAIL --credentials-type ROOT|USER
          --identity TYPE:ID[:NAME]...  [field flags]  [--otp SMS] [--push CHANNEL]...
          [--users-file PATH]           reads the new user's password
  set     --id ID [field flags] [--users-file PATH]
          changes only the flags given; an empty value clears an optional
          field; --identity (repeatable) replaces the identities
  passwd  --id ID [--force-password-change]
          reads a new password; clears passwordExpires; ends the user's sessions
  list    one line per user: id, email, userName, credentialsType,
          identities, factors, active|disabled (never a hash)
  del     --id ID                       removes the user and ends its sessions
  enrol   --id ID [--otp SMS] [--push AUTHY|BIOMETRIC]... [--remove]
          adds (or with --remove removes) step-up factors
  unlock  <user> --redis URL [--users-file PATH]
          lifts the user's lockout (see: session help)

field flags:
  --email EMAIL  --user-name NAME  --credentials-type ROOT|USER
  --identity TYPE:ID[:NAME] (TYPE CONSUMER or CORPORATE; repeatable)
  --first-name S  --last-name S  --nick-name S  --uuid S
  --phone E164  --phone-country-code DIGITS  --text-number E164  --text-country-code DIGITS
  --mfa SMS|EMAIL|TOTP|none  --totp-secret-file PATH (holds the base32 secret)
  --password-expires RFC3339  --force-password-change[=false]  --disabled[=false]

targets:
  --redis URL       the Redis of "store redis <url>" (default: $AUTHGATE_REDIS_URL,
                    which keeps a Redis password off the command line)
  --prefix P        the store's key_prefix (default "authgate:")
  --file PATH       a users file {"users": [...]}, rewritten atomically
  --users-file PATH with --redis: refuse an id, email or userName that this
                    users file has (the file wins such a clash at run time)

exit status: 0 done, 1 failed, 2 usage error
`

// exitUsage and exitFailed are the exit codes of a wrong command line and
// of an operation that failed.
const (
	exitFailed = 1
	exitUsage  = 2
)

// secretFlags are refused with a message: secrets never go on the command
// line.
var secretFlags = map[string]string{
	"password":      "type the password when asked, or give it as one line on standard input",
	"password-hash": "type the password when asked, or give it as one line on standard input",
	"totp-secret":   "use --totp-secret-file PATH",
}

// userTarget is where the users live: the store (authcore.StoreUsers) or
// a users file.
type userTarget interface {
	Add(ctx context.Context, u *authcore.User) error
	Update(ctx context.Context, id string, change func(u *authcore.User) error) (*authcore.User, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]authcore.User, error)
}

// userCmd is one run of `authgate user <command>`.
type userCmd struct {
	name           string
	stdin          *os.File
	stdout, stderr io.Writer

	redisURL, prefix, file, usersFile string
	id                                string
	edits                             []func(u *authcore.User)
	identities                        []authcore.Identity
	otp, push                         []string
	remove, force                     bool
}

// runUser runs `authgate user ...` and returns its exit code.
func runUser(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) == 0 || slices.Contains([]string{"help", "-h", "--help"}, args[0]) {
		fmt.Fprint(stderr, userUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	if args[0] == "unlock" {
		return runAdmin("user unlock", args[1:], stdout, stderr)
	}
	c := &userCmd{name: args[0], stdin: stdin, stdout: stdout, stderr: stderr}
	run, fs := c.flags()
	if run == nil {
		return c.usage("unknown command %q", c.name)
	}
	for _, arg := range args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if hint, ok := secretFlags[name]; ok && strings.HasPrefix(arg, "-") {
			return c.usage("--%s is refused: secrets never go on the command line, where other users and shell history see them; %s", name, hint)
		}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, userUsage)
			return 0
		}
		return c.usage("%v", err)
	}
	if fs.NArg() > 0 {
		return c.usage("unexpected argument %q", fs.Arg(0))
	}
	if c.name != "list" && c.id == "" {
		return c.usage("--id is required")
	}
	if c.usersFile != "" && c.file != "" {
		return c.usage("--users-file goes with --redis: a users file cannot clash with itself")
	}
	if c.redisURL == "" && c.file == "" {
		c.redisURL = os.Getenv("AUTHGATE_REDIS_URL")
	}
	if (c.redisURL == "") == (c.file == "") {
		return c.usage("give one target: --redis URL (or $AUTHGATE_REDIS_URL) or --file PATH")
	}
	return run()
}

// flags declares the command's flags and returns its run function (nil
// for an unknown command).
func (c *userCmd) flags() (func() int, *flag.FlagSet) {
	fs := flag.NewFlagSet("authgate user "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.redisURL, "redis", "", "")
	fs.StringVar(&c.prefix, "prefix", "authgate:", "")
	fs.StringVar(&c.file, "file", "", "")
	if c.name != "list" {
		fs.StringVar(&c.id, "id", "", "")
	}
	switch c.name {
	case "add":
		c.fieldFlags(fs)
		c.factorFlags(fs)
		return c.add, fs
	case "set":
		c.fieldFlags(fs)
		return c.set, fs
	case "passwd":
		fs.BoolVar(&c.force, "force-password-change", false, "")
		return c.passwd, fs
	case "list":
		return c.list, fs
	case "del":
		return c.del, fs
	case "enrol":
		c.factorFlags(fs)
		fs.BoolVar(&c.remove, "remove", false, "")
		return c.enrol, fs
	}
	return nil, fs
}

// fieldFlags declares a flag per user field; each given flag adds an edit.
func (c *userCmd) fieldFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.usersFile, "users-file", "", "")
	text := func(name string, field func(u *authcore.User) *string) {
		fs.Func(name, "", func(v string) error {
			c.edits = append(c.edits, func(u *authcore.User) { *field(u) = v })
			return nil
		})
	}
	text("email", func(u *authcore.User) *string { return &u.Email })
	text("user-name", func(u *authcore.User) *string { return &u.UserName })
	text("first-name", func(u *authcore.User) *string { return &u.FirstName })
	text("last-name", func(u *authcore.User) *string { return &u.LastName })
	text("nick-name", func(u *authcore.User) *string { return &u.NickName })
	text("uuid", func(u *authcore.User) *string { return &u.UUID })
	text("phone", func(u *authcore.User) *string { return &u.Phone })
	text("text-number", func(u *authcore.User) *string { return &u.TextNumber })
	text("phone-country-code", func(u *authcore.User) *string { return &u.PhoneCountryCode })
	text("text-country-code", func(u *authcore.User) *string { return &u.TextCountryCode })
	fs.Func("credentials-type", "", func(v string) error {
		v = strings.ToUpper(v)
		if v != authcore.CredentialsRoot && v != authcore.CredentialsUser {
			return errors.New("want ROOT or USER")
		}
		c.edits = append(c.edits, func(u *authcore.User) { u.CredentialsType = v })
		return nil
	})
	fs.Func("mfa", "", func(v string) error {
		v = strings.ToUpper(v)
		switch v {
		case "NONE", "":
			v = ""
		case "SMS", "EMAIL", "TOTP":
		default:
			return errors.New("want SMS, EMAIL, TOTP or none")
		}
		c.edits = append(c.edits, func(u *authcore.User) { u.MFA = v })
		return nil
	})
	fs.Func("totp-secret-file", "", func(path string) error {
		secret := ""
		if path != "" {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if secret = strings.TrimSpace(string(data)); secret == "" {
				return fmt.Errorf("%s is empty", path)
			}
		}
		c.edits = append(c.edits, func(u *authcore.User) { u.TOTPSecret = secret })
		return nil
	})
	fs.Func("password-expires", "", func(v string) error {
		var at *time.Time
		if v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errors.New("want an RFC 3339 time such as 2027-01-31T00:00:00Z, or empty for never")
			}
			at = &t
		}
		c.edits = append(c.edits, func(u *authcore.User) { u.PasswordExpires = at })
		return nil
	})
	flagBool := func(name string, field func(u *authcore.User) *bool) {
		fs.BoolFunc(name, "", func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return err
			}
			c.edits = append(c.edits, func(u *authcore.User) { *field(u) = b })
			return nil
		})
	}
	flagBool("force-password-change", func(u *authcore.User) *bool { return &u.ForcePasswordChange })
	flagBool("disabled", func(u *authcore.User) *bool { return &u.Disabled })
	fs.Func("identity", "", func(v string) error {
		parts := strings.SplitN(v, ":", 3)
		if len(parts) < 2 {
			return errors.New("want TYPE:ID[:NAME], e.g. CONSUMER:2001:Alice")
		}
		id := authcore.Identity{Type: strings.ToUpper(parts[0]), ID: parts[1]}
		if len(parts) == 3 {
			id.Name = parts[2]
		}
		if len(c.identities) == 0 {
			c.edits = append(c.edits, func(u *authcore.User) { u.Identities = slices.Clone(c.identities) })
		}
		c.identities = append(c.identities, id)
		return nil
	})
}

// factorFlags declares --otp and --push.
func (c *userCmd) factorFlags(fs *flag.FlagSet) {
	channel := func(name string, dst *[]string, allowed ...string) {
		fs.Func(name, "", func(v string) error {
			v = strings.ToUpper(v)
			if !slices.Contains(allowed, v) {
				return fmt.Errorf("want %s", strings.Join(allowed, " or "))
			}
			*dst = append(*dst, v)
			return nil
		})
	}
	channel("otp", &c.otp, "SMS")
	channel("push", &c.push, "AUTHY", "BIOMETRIC")
}

func (c *userCmd) usage(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "authgate user %s: %s\n(user help prints the usage)\n", c.name, fmt.Sprintf(format, args...))
	return exitUsage
}

func (c *userCmd) failed(err error) int {
	fmt.Fprintf(c.stderr, "authgate user %s: %v\n", c.name, err)
	return exitFailed
}

// target opens the store or the users file; done releases it.
func (c *userCmd) target() (t userTarget, done func(), err error) {
	if c.file != "" {
		return &fileUsers{path: c.file}, func() {}, nil
	}
	store, err := openStore(c.redisURL, c.prefix)
	if err != nil {
		return nil, nil, err
	}
	return authcore.NewStoreUsers(store, nil), func() { store.Close() }, nil
}

// openStore connects to the gateway's Redis and checks that it answers.
func openStore(url, prefix string) (*redisstore.Store, error) {
	opts, err := redisstore.ParseURL(url)
	if err != nil {
		return nil, err
	}
	store := redisstore.New(goredis.NewUniversalClient(opts), prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.Ping(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("reaching redis: %w", err)
	}
	return store, nil
}

// operate runs op against the target with a time limit.
func (c *userCmd) operate(op func(ctx context.Context, t userTarget) error) int {
	t, done, err := c.target()
	if err != nil {
		return c.failed(err)
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := op(ctx, t); errors.Is(err, authcore.ErrUserNotFound) {
		return c.failed(fmt.Errorf("no user with id %s", c.id))
	} else if err != nil {
		return c.failed(err)
	}
	return 0
}

// fileClash returns a check that refuses users clashing with --users-file
// (none without it).
func (c *userCmd) fileClash() (func(u *authcore.User) error, error) {
	if c.usersFile == "" {
		return func(*authcore.User) error { return nil }, nil
	}
	static, err := authcore.LoadUsersFile(c.usersFile)
	if err != nil {
		return nil, err
	}
	return static.Clash, nil
}

// newPassword reads a password and returns its argon2id hash. It must meet
// the policy of /passwords/update.
func (c *userCmd) newPassword() (string, error) {
	pw, err := readPassword(c.stdin, c.stderr)
	if err != nil {
		return "", err
	}
	var refused *authcore.ChallengeError
	if errors.As(authcore.CheckPasswordPolicy(pw), &refused) {
		switch refused.Code {
		case authcore.CodePasswordTooShort:
			return "", fmt.Errorf("password refused: shorter than %d characters", authcore.MinPasswordLen)
		case authcore.CodePasswordTooLong:
			return "", fmt.Errorf("password refused: longer than %d characters", authcore.MaxPasswordLen)
		}
		return "", errors.New("password refused: it needs a lower-case and an upper-case letter, a digit and a special character")
	}
	return authcore.HashPassword(pw)
}

func (c *userCmd) add() int {
	u := &authcore.User{ID: c.id, Factors: authcore.Factors{OTP: c.otp, Push: c.push}}
	for _, edit := range c.edits {
		edit(u)
	}
	switch {
	case u.Email == "":
		return c.usage("--email is required")
	case u.CredentialsType == "":
		return c.usage("--credentials-type is required (ROOT or USER)")
	case len(u.Identities) == 0:
		return c.usage("--identity is required (TYPE:ID[:NAME], repeatable)")
	}
	clash, err := c.fileClash()
	if err != nil {
		return c.failed(err)
	}
	// Check everything but the password before asking for it.
	check := *u
	check.Password = authcore.DummyHashLike("")
	if err := authcore.ValidateUser(&check); err != nil {
		return c.failed(fmt.Errorf("invalid user: %w", err))
	}
	if err := servable(u); err != nil {
		return c.failed(err)
	}
	if err := clash(u); err != nil {
		return c.failed(err)
	}
	if u.Password, err = c.newPassword(); err != nil {
		return c.failed(err)
	}
	return c.operate(func(ctx context.Context, t userTarget) error {
		if err := t.Add(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added user %s (%s)\n", u.ID, u.Email)
		return nil
	})
}

func (c *userCmd) set() int {
	if len(c.edits) == 0 {
		return c.usage("nothing to change: give at least one field flag")
	}
	clash, err := c.fileClash()
	if err != nil {
		return c.failed(err)
	}
	return c.operate(func(ctx context.Context, t userTarget) error {
		u, err := t.Update(ctx, c.id, func(u *authcore.User) error {
			for _, edit := range c.edits {
				edit(u)
			}
			if err := servable(u); err != nil {
				return err
			}
			return clash(u)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "updated user %s (%s)\n", u.ID, u.Email)
		return nil
	})
}

func (c *userCmd) passwd() int {
	hash, err := c.newPassword()
	if err != nil {
		return c.failed(err)
	}
	return c.operate(func(ctx context.Context, t userTarget) error {
		u, err := t.Update(ctx, c.id, func(u *authcore.User) error {
			u.Password, u.PasswordExpires, u.ForcePasswordChange = hash, nil, c.force
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "changed the password of user %s (%s)\n", u.ID, u.Email)
		return nil
	})
}

func (c *userCmd) list() int {
	return c.operate(func(ctx context.Context, t userTarget) error {
		users, err := t.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
		for _, u := range users {
			var ids []string
			for _, id := range u.Identities {
				ids = append(ids, id.Type+":"+id.ID)
			}
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, orDash(u.UserName), u.CredentialsType,
				strings.Join(ids, ","), orDash(describeFactors(u.Factors)), status)
		}
		return w.Flush()
	})
}

func (c *userCmd) del() int {
	return c.operate(func(ctx context.Context, t userTarget) error {
		if err := t.Delete(ctx, c.id); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted user %s\n", c.id)
		return nil
	})
}

func (c *userCmd) enrol() int {
	if len(c.otp)+len(c.push) == 0 {
		return c.usage("give a factor: --otp SMS or --push AUTHY|BIOMETRIC")
	}
	return c.operate(func(ctx context.Context, t userTarget) error {
		u, err := t.Update(ctx, c.id, func(u *authcore.User) error {
			if !c.remove && len(c.otp) > 0 && u.TextNumber == "" && u.Phone == "" {
				return errors.New("the user has no textNumber or phone to send SMS codes to")
			}
			u.Factors.OTP = changeFactors(u.Factors.OTP, c.otp, c.remove)
			u.Factors.Push = changeFactors(u.Factors.Push, c.push, c.remove)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "user %s factors: %s\n", u.ID, orDash(describeFactors(u.Factors)))
		return nil
	})
}

// servable refuses a user the server could not serve (authcore.CheckServable),
// naming it: written, it would answer every Manage call with 1500.
func servable(u *authcore.User) error {
	if err := authcore.CheckServable(u); err != nil {
		return fmt.Errorf("user %s could not be served: %w", u.ID, err)
	}
	return nil
}

// changeFactors adds channels to (or removes them from) have; enrolling an
// enrolled channel or removing a missing one changes nothing.
func changeFactors(have, channels []string, remove bool) []string {
	for _, ch := range channels {
		switch i := slices.Index(have, ch); {
		case remove && i >= 0:
			have = slices.Delete(have, i, i+1)
		case !remove && i < 0:
			have = append(have, ch)
		}
	}
	return have
}

func describeFactors(f authcore.Factors) string {
	var out []string
	for _, ch := range f.OTP {
		out = append(out, "otp:"+ch)
	}
	for _, ch := range f.Push {
		out = append(out, "push:"+ch)
	}
	return strings.Join(out, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
