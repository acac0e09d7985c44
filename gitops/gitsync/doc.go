// Package gitsync keeps one clone of a git branch and reads commits from it: it fetches the branch
// (file://, http(s):// with a token or basic auth, ssh:// with a key and known_hosts), follows a
// force-push, and opens a commit's tree as an fs.FS for the manifest loader.
//
// The clone is bare: there is no work tree, so what is read is exactly what was committed, never a file
// someone edited in place. gitsync never pushes, never writes to the remote, and never logs or returns a
// credential (errors name the URL without its user info).
package gitsync
