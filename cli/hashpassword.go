package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/authgate/authgate/authcore"
)

const hashPasswordUsage = `usage: caddy authgate hash-password

Reads a password (from the terminal without echo, or one line of standard
input) and prints its argon2id hash (m=19456 KiB, t=2, p=1) as a PHC string
for the "password" field of a users_file. The password is never taken
from the command line, where other users and shell history could see it.
(Caddy's own "hash-password" prints a bcrypt hash for basic_auth; the
users file accepts that too, but new hashes should be argon2id.)
`

// hashPassword runs the hash-password subcommand and returns its exit code.
func hashPassword(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch name, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "="); {
		case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
			fmt.Fprint(stderr, hashPasswordUsage)
			return 0
		case name == "plaintext" || name == "p" || !strings.HasPrefix(args[0], "-"):
			fmt.Fprintf(stderr, "authgate hash-password: %s is refused: a password on the command line is seen by "+
				"other users (ps) and kept in shell history; type it when asked, or give it as one line on standard input\n",
				describeArg(args[0]))
		default:
			fmt.Fprintf(stderr, "authgate hash-password: unknown flag %s: it takes none\n", args[0])
		}
		fmt.Fprint(stderr, hashPasswordUsage)
		return exitUsage
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "authgate hash-password: %v\n", err)
		return 1
	}
	hash, err := authcore.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "authgate hash-password: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, hash)
	return 0
}

// describeArg names a refused argument without repeating it when it may be
// the password itself.
func describeArg(arg string) string {
	if strings.HasPrefix(arg, "-") {
		name, _, _ := strings.Cut(arg, "=")
		return name
	}
	return "a password argument"
}

func readPassword(in *os.File, prompt io.Writer) (string, error) {
	if term.IsTerminal(int(in.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		first, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Again: ")
		second, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(first) != string(second) {
			return "", errors.New("the passwords do not match")
		}
		return checkPassword(string(first))
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

func checkPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}
