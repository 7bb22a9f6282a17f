/*
 * su-exec — switch user and group, then exec a command in this same process.
 *
 *     su-exec USER[:GROUP] COMMAND [ARGS...]
 *
 * Written for this project; it keeps the command line contract of the well-known
 * su-exec tool but differs where that tool was unsafe:
 *
 *   - An unknown USER or GROUP is an error. Nothing is executed; in particular the
 *     command never runs with the caller's (root) credentials by accident.
 *   - Every credential call is checked, and the result is verified afterwards.
 *   - A numeric uid without a passwd entry is allowed (containers often run as
 *     arbitrary uids). Its primary group then defaults to the same number, not to
 *     the caller's group 0, so no root group membership leaks through.
 *
 * Why /etc/passwd and /etc/group are read directly (fgetpwent/fgetgrent on the
 * files) rather than through getpwnam/initgroups: the binary is linked statically,
 * and static glibc can only honour NSS by dlopen()ing the shared NSS modules of
 * whatever glibc the image happens to contain, which may not match ours. Images
 * built here use plain files for users and groups, so reading the files is both
 * exact and independent of the target's libc. LDAP/SSSD users are not supported.
 *
 * Exit status: 1 for usage, lookup or credential errors (nothing was run);
 * 126 when COMMAND exists but cannot be executed; 127 when it is not found.
 * Otherwise this process *is* COMMAND, so its status is COMMAND's.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"

#define EXIT_FAILED 1
#define EXIT_CANNOT_EXECUTE 126
#define EXIT_NOT_FOUND 127

struct target {
	uid_t uid;
	gid_t gid;
	/* Both NULL when the uid has no passwd entry. */
	char *name;
	char *home;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("su-exec: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILED);
}

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
	fputs("usage: su-exec USER[:GROUP] COMMAND [ARGS...]\n"
	      "\n"
	      "Switch to USER (name or numeric uid) and GROUP (name or numeric gid),\n"
	      "then execute COMMAND in place of this process.\n",
	      stderr);
	exit(EXIT_FAILED);
}

static char *xstrdup(const char *s)
{
	char *copy = strdup(s);

	if (copy == NULL)
		die("out of memory");
	return copy;
}

/*
 * Parses a decimal id. Only digits are accepted (strtoumax alone would take
 * whitespace, a sign and "0x"), and the all-ones value is rejected because
 * setresuid/setresgid read (uid_t)-1 as "leave unchanged" — accepting it would
 * silently keep root.
 */
static int parse_id(const char *s, uintmax_t limit, uintmax_t *out)
{
	const char *p;
	char *end;
	uintmax_t value;

	if (*s == '\0')
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
	}
	errno = 0;
	value = strtoumax(s, &end, 10);
	if (errno != 0 || *end != '\0' || value >= limit)
		return -1;
	*out = value;
	return 0;
}

/* A missing database is the same as an empty one; any other failure is fatal. */
static FILE *open_db(const char *path)
{
	FILE *fp = fopen(path, "re");

	if (fp == NULL && errno != ENOENT)
		die("cannot open %s: %s", path, strerror(errno));
	return fp;
}

static void close_db(FILE *fp, const char *path)
{
	/* fgetpwent/fgetgrent skip malformed lines, so a stream error means I/O trouble. */
	if (ferror(fp))
		die("error reading %s", path);
	fclose(fp);
}

/* Finds a passwd entry by name (name != NULL) or by uid. Returns 1 if found. */
static int find_user(const char *name, uid_t uid, struct target *t)
{
	FILE *fp = open_db(PASSWD_FILE);
	struct passwd *pw;
	int found = 0;

	if (fp == NULL)
		return 0;
	while ((pw = fgetpwent(fp)) != NULL) {
		if (name != NULL ? strcmp(pw->pw_name, name) == 0 : pw->pw_uid == uid) {
			t->uid = pw->pw_uid;
			t->gid = pw->pw_gid;
			t->name = xstrdup(pw->pw_name);
			t->home = xstrdup(pw->pw_dir[0] != '\0' ? pw->pw_dir : "/");
			found = 1;
			break;
		}
	}
	close_db(fp, PASSWD_FILE);
	return found;
}

static int find_group(const char *name, gid_t *gid)
{
	FILE *fp = open_db(GROUP_FILE);
	struct group *gr;
	int found = 0;

	if (fp == NULL)
		return 0;
	while ((gr = fgetgrent(fp)) != NULL) {
		if (strcmp(gr->gr_name, name) == 0) {
			*gid = gr->gr_gid;
			found = 1;
			break;
		}
	}
	close_db(fp, GROUP_FILE);
	return found;
}

static void resolve_user(const char *spec, struct target *t)
{
	uintmax_t id;

	/* Names first, as chown(1) does: a user literally named "1000" wins over uid 1000. */
	if (find_user(spec, 0, t))
		return;
	if (parse_id(spec, (uintmax_t)(uid_t)-1, &id) != 0)
		die("unknown user '%s'", spec);
	if (find_user(NULL, (uid_t)id, t))
		return;
	t->uid = (uid_t)id;
	t->gid = (gid_t)id;
	t->name = NULL;
	t->home = NULL;
}

static gid_t resolve_group(const char *spec)
{
	gid_t gid;
	uintmax_t id;

	if (find_group(spec, &gid))
		return gid;
	if (parse_id(spec, (uintmax_t)(gid_t)-1, &id) != 0)
		die("unknown group '%s'", spec);
	return (gid_t)id;
}

static void add_group(gid_t **list, size_t *count, size_t max, gid_t gid)
{
	size_t i;
	gid_t *grown;

	for (i = 0; i < *count; i++) {
		if ((*list)[i] == gid)
			return;
	}
	if (*count >= max)
		die("too many supplementary groups (limit %zu)", max);
	grown = realloc(*list, (*count + 1) * sizeof(**list));
	if (grown == NULL)
		die("out of memory");
	*list = grown;
	(*list)[(*count)++] = gid;
}

/*
 * The same set initgroups(3) would compute: the primary group plus every group
 * in /etc/group that lists the user as a member.
 */
static size_t member_groups(const struct target *t, gid_t **list)
{
	long ngroups_max = sysconf(_SC_NGROUPS_MAX);
	size_t max = ngroups_max > 0 ? (size_t)ngroups_max : 65536;
	size_t count = 0;
	struct group *gr;
	char **member;
	FILE *fp;

	*list = NULL;
	add_group(list, &count, max, t->gid);
	fp = open_db(GROUP_FILE);
	if (fp == NULL)
		return count;
	while ((gr = fgetgrent(fp)) != NULL) {
		for (member = gr->gr_mem; *member != NULL; member++) {
			if (strcmp(*member, t->name) == 0) {
				add_group(list, &count, max, gr->gr_gid);
				break;
			}
		}
	}
	close_db(fp, GROUP_FILE);
	return count;
}

static void switch_credentials(const struct target *t, const gid_t *groups, size_t ngroups)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	/* Groups before gid before uid: once the uid is dropped the others cannot be changed. */
	if (setgroups(ngroups, groups) != 0)
		die("setgroups: %s", strerror(errno));
	if (setresgid(t->gid, t->gid, t->gid) != 0)
		die("setresgid(%ju): %s", (uintmax_t)t->gid, strerror(errno));
	if (setresuid(t->uid, t->uid, t->uid) != 0)
		die("setresuid(%ju): %s", (uintmax_t)t->uid, strerror(errno));

	/* Trust, but verify: real, effective and saved ids must all have moved. */
	if (getresgid(&rgid, &egid, &sgid) != 0 || rgid != t->gid || egid != t->gid || sgid != t->gid)
		die("group id did not change to %ju", (uintmax_t)t->gid);
	if (getresuid(&ruid, &euid, &suid) != 0 || ruid != t->uid || euid != t->uid || suid != t->uid)
		die("user id did not change to %ju", (uintmax_t)t->uid);
	if (t->uid != 0 && setuid(0) == 0)
		die("could regain root after dropping privileges");
}

int main(int argc, char *argv[])
{
	struct target t;
	char *user_spec;
	char *group_spec;
	gid_t *groups;
	size_t ngroups;
	int exec_errno;

	if (argc < 3)
		usage();

	user_spec = argv[1];
	group_spec = strchr(user_spec, ':');
	if (group_spec != NULL)
		*group_spec++ = '\0';
	if (*user_spec == '\0' || (group_spec != NULL && *group_spec == '\0'))
		usage();

	resolve_user(user_spec, &t);
	if (group_spec != NULL) {
		/* An explicit group replaces the user's groups entirely, like su -g. */
		t.gid = resolve_group(group_spec);
		groups = malloc(sizeof(*groups));
		if (groups == NULL)
			die("out of memory");
		groups[0] = t.gid;
		ngroups = 1;
	} else if (t.name != NULL) {
		ngroups = member_groups(&t, &groups);
	} else {
		groups = malloc(sizeof(*groups));
		if (groups == NULL)
			die("out of memory");
		groups[0] = t.gid;
		ngroups = 1;
	}

	switch_credentials(&t, groups, ngroups);
	free(groups);

	/* An unknown uid gets "/" rather than keeping root's HOME. */
	if (setenv("HOME", t.home != NULL ? t.home : "/", 1) != 0)
		die("setenv HOME: %s", strerror(errno));

	execvp(argv[2], &argv[2]);
	exec_errno = errno;
	fprintf(stderr, "su-exec: %s: %s\n", argv[2], strerror(exec_errno));
	return exec_errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
}
