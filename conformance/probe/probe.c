/*
 * probe: report what a container process sees, as one JSON object on stdout.
 *
 * Built statically by the conformance suite and copied into each bundle's
 * rootfs as /probe.  With no arguments it reports the process identity,
 * credentials, limits, namespaces, mounts, devices and so on.  Options ask
 * for extra observations about paths or syscalls named by a check:
 *
 *   --stat PATH      lstat() PATH (type, mode, owner, device numbers)
 *   --access PATH    can PATH be read (bytes/entries seen) and written?
 *   --read PATH      contents of PATH (first 64 KiB)
 *   --open PATH      errno of open(PATH, O_RDONLY) (0 on success)
 *   --sysctl KEY     value of /proc/sys/KEY (dots become slashes)
 *   --call NAME      errno of a named harmless syscall (see do_call)
 *
 * The object always starts with "probe":"ociish-conformance" and ends with
 * "complete":true, so a truncated or missing report is detectable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <limits.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_OPTS 64

static FILE *out;
static int need_comma;

/* ---- minimal JSON writer ------------------------------------------------ */

static void sep(void)
{
    if (need_comma)
        fputc(',', out);
    need_comma = 1;
}

static void put_str(const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void key(const char *k)
{
    sep();
    put_str(k);
    fputc(':', out);
    need_comma = 0;
}

static void open_obj(const char *k)
{
    if (k)
        key(k);
    else
        sep();
    fputc('{', out);
    need_comma = 0;
}

static void open_arr(const char *k)
{
    key(k);
    fputc('[', out);
    need_comma = 0;
}

static void close_obj(void) { fputc('}', out); need_comma = 1; }
static void close_arr(void) { fputc(']', out); need_comma = 1; }

static void kv_str(const char *k, const char *v) { key(k); put_str(v); need_comma = 1; }
static void kv_int(const char *k, long long v) { key(k); fprintf(out, "%lld", v); need_comma = 1; }
static void kv_u64(const char *k, unsigned long long v) { key(k); fprintf(out, "%llu", v); need_comma = 1; }
static void kv_bool(const char *k, int v) { key(k); fputs(v ? "true" : "false", out); need_comma = 1; }
static void arr_str(const char *v) { sep(); put_str(v); }
static void arr_int(long long v) { sep(); fprintf(out, "%lld", v); }

/* ---- helpers ------------------------------------------------------------ */

/* Read up to cap-1 bytes of path into buf; returns bytes read or -errno. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    return (ssize_t)len;
}

/* Emit each line of a file as an array element. */
static void file_lines(const char *k, const char *path)
{
    static char buf[1 << 18];
    open_arr(k);
    if (slurp(path, buf, sizeof buf) >= 0) {
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            arr_str(line);
    }
    close_arr();
}

static char file_type(mode_t m)
{
    if (S_ISCHR(m)) return 'c';
    if (S_ISBLK(m)) return 'b';
    if (S_ISFIFO(m)) return 'p';
    if (S_ISLNK(m)) return 'l';
    if (S_ISDIR(m)) return 'd';
    if (S_ISSOCK(m)) return 's';
    return 'f';
}

static void stat_obj(const char *k, const char *path)
{
    struct stat st;
    open_obj(k);
    if (lstat(path, &st) < 0) {
        kv_int("errno", errno);
        close_obj();
        return;
    }
    char t[2] = { file_type(st.st_mode), 0 };
    kv_str("type", t);
    kv_int("mode", st.st_mode & 07777);
    kv_int("uid", st.st_uid);
    kv_int("gid", st.st_gid);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
        kv_int("major", major(st.st_rdev));
        kv_int("minor", minor(st.st_rdev));
    }
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = 0;
            kv_str("target", target);
        }
    }
    close_obj();
}

/* ---- report sections ---------------------------------------------------- */

static void report_ids(void)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    open_obj("user");
    kv_int("uid", ru); kv_int("euid", eu); kv_int("suid", su);
    kv_int("gid", rg); kv_int("egid", eg); kv_int("sgid", sg);
    gid_t groups[NGROUPS_MAX];
    int n = getgroups(NGROUPS_MAX, groups);
    open_arr("groups");
    for (int i = 0; i < n; i++)
        arr_int(groups[i]);
    close_arr();
    close_obj();
}

/* Selected fields of /proc/self/status, verbatim. */
static void report_status(void)
{
    static const char *fields[] = { "CapInh", "CapPrm", "CapEff", "CapBnd",
                                    "CapAmb", "NoNewPrivs", "Seccomp", NULL };
    static char buf[1 << 16];
    open_obj("status");
    if (slurp("/proc/self/status", buf, sizeof buf) >= 0) {
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *colon = strchr(line, ':');
            if (!colon)
                continue;
            *colon = 0;
            for (int i = 0; fields[i]; i++) {
                if (strcmp(line, fields[i]) == 0) {
                    char *v = colon + 1;
                    while (*v == ' ' || *v == '\t')
                        v++;
                    kv_str(line, v);
                }
            }
        }
    }
    close_obj();
}

static void report_rlimits(void)
{
    static const struct { const char *name; int res; } lims[] = {
        { "RLIMIT_AS", RLIMIT_AS }, { "RLIMIT_CORE", RLIMIT_CORE },
        { "RLIMIT_CPU", RLIMIT_CPU }, { "RLIMIT_DATA", RLIMIT_DATA },
        { "RLIMIT_FSIZE", RLIMIT_FSIZE }, { "RLIMIT_LOCKS", RLIMIT_LOCKS },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
        { "RLIMIT_NICE", RLIMIT_NICE }, { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_NPROC", RLIMIT_NPROC }, { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },
        { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING }, { "RLIMIT_STACK", RLIMIT_STACK },
    };
    open_obj("rlimits");
    for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
        struct rlimit rl;
        if (getrlimit(lims[i].res, &rl) < 0)
            continue;
        open_obj(lims[i].name);
        kv_u64("soft", rl.rlim_cur);
        kv_u64("hard", rl.rlim_max);
        close_obj();
    }
    close_obj();
}

static void report_uname(void)
{
    struct utsname u;
    open_obj("uname");
    if (uname(&u) == 0) {
        kv_str("nodename", u.nodename);
        kv_str("domainname", u.domainname);
        kv_str("machine", u.machine);
    }
    close_obj();
}

static void report_namespaces(void)
{
    static const char *names[] = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts", NULL };
    open_obj("namespaces");
    for (int i = 0; names[i]; i++) {
        char path[64], target[128];
        snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0)
            continue;
        target[n] = 0;
        kv_str(names[i], target);
    }
    close_obj();
}

static void report_dir(const char *k, const char *dir)
{
    open_obj(k);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            stat_obj(e->d_name, path);
        }
        closedir(d);
    }
    close_obj();
}

static void report_stdio(void)
{
    open_arr("stdio");
    for (int fd = 0; fd < 3; fd++) {
        struct stat st;
        char link[64], target[PATH_MAX];
        open_obj(NULL);
        if (fstat(fd, &st) < 0) {
            kv_int("errno", errno);
            close_obj();
            continue;
        }
        char t[2] = { file_type(st.st_mode), 0 };
        kv_str("type", t);
        kv_bool("tty", isatty(fd));
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = 0;
            kv_str("target", target);
        }
        if (S_ISCHR(st.st_mode)) {
            kv_int("major", major(st.st_rdev));
            kv_int("minor", minor(st.st_rdev));
        }
        struct winsize ws;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0) {
            kv_int("rows", ws.ws_row);
            kv_int("cols", ws.ws_col);
        }
        close_obj();
    }
    close_arr();
}

static void report_fds(void)
{
    open_arr("fds");
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            int fd = atoi(e->d_name);
            if (fd != dirfd(d))
                arr_int(fd);
        }
        closedir(d);
    }
    close_arr();
}

static void report_sched(void)
{
    open_obj("sched");
    kv_int("policy", sched_getscheduler(0));
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    kv_int("nice", errno ? -100 : nice);
    /* IOPRIO_WHO_PROCESS == 1 */
    kv_int("ioprio", syscall(SYS_ioprio_get, 1, 0));
    cpu_set_t set;
    open_arr("affinity");
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                arr_int(c);
    close_arr();
    int mode = -1;
    unsigned long mask[16] = { 0 };
    if (syscall(SYS_get_mempolicy, &mode, mask, sizeof mask * 8, NULL, 0) == 0) {
        kv_int("mempolicy", mode);
        kv_u64("mempolicy_nodes", mask[0]);
    }
    kv_int("personality", personality(0xffffffff));
    close_obj();
}

static void report_clocks(void)
{
    struct timespec ts;
    open_obj("clocks");
    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
        kv_int("monotonic", ts.tv_sec);
    if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
        kv_int("boottime", ts.tv_sec);
    close_obj();
}

static void report_netifs(void)
{
    open_arr("netifs");
    struct if_nameindex *ifs = if_nameindex();
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
        struct ifreq req;
        memset(&req, 0, sizeof req);
        snprintf(req.ifr_name, sizeof req.ifr_name, "%s", i->if_name);
        int up = sock >= 0 && ioctl(sock, SIOCGIFFLAGS, &req) == 0 && (req.ifr_flags & IFF_UP);
        open_obj(NULL);
        kv_str("name", i->if_name);
        kv_bool("up", up);
        close_obj();
    }
    if (sock >= 0)
        close(sock);
    if (ifs)
        if_freenameindex(ifs);
    close_arr();
    /* IPv4 addresses as "ifname address". */
    open_arr("inet");
    struct ifaddrs *addrs = NULL;
    if (getifaddrs(&addrs) == 0) {
        for (struct ifaddrs *a = addrs; a; a = a->ifa_next) {
            char ip[INET_ADDRSTRLEN], item[IF_NAMESIZE + INET_ADDRSTRLEN + 2];
            if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET)
                continue;
            inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, ip, sizeof ip);
            snprintf(item, sizeof item, "%s %s", a->ifa_name, ip);
            arr_str(item);
        }
        freeifaddrs(addrs);
    }
    close_arr();
}

/* ---- per-check observations --------------------------------------------- */

static void access_obj(const char *path)
{
    struct stat st;
    open_obj(path);
    if (stat(path, &st) < 0) {
        kv_bool("exists", 0);
        kv_int("errno", errno);
        close_obj();
        return;
    }
    kv_bool("exists", 1);
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        int entries = 0;
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    entries++;
            closedir(d);
            kv_int("entries", entries);
        } else {
            kv_int("read_errno", errno);
        }
    } else {
        static char buf[4096];
        ssize_t n = slurp(path, buf, sizeof buf);
        if (n >= 0)
            kv_int("bytes", n);
        else
            kv_int("read_errno", -n);
    }
    /* access(W_OK) reports EROFS for read-only mounts without writing. */
    kv_int("write_errno", faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0 ? 0 : errno);
    close_obj();
}

static void read_obj(const char *path)
{
    static char buf[1 << 16];
    ssize_t n = slurp(path, buf, sizeof buf);
    open_obj(path);
    if (n >= 0)
        kv_str("data", buf);
    else
        kv_int("errno", -n);
    close_obj();
}

static void sysctl_obj(const char *name)
{
    char path[PATH_MAX], buf[4096];
    snprintf(path, sizeof path, "/proc/sys/%s", name);
    for (char *p = path + strlen("/proc/sys/"); *p; p++)
        if (*p == '.')
            *p = '/';
    ssize_t n = slurp(path, buf, sizeof buf);
    if (n < 0) {
        kv_str(name, "");
        return;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    kv_str(name, buf);
}

/* Harmless syscalls whose errno a seccomp check can inspect. */
static long do_call(const char *name)
{
    char buf[PATH_MAX];
    long r;
    errno = 0;
    if (strcmp(name, "getcwd") == 0)
        r = syscall(SYS_getcwd, buf, sizeof buf);
    else if (strcmp(name, "getpriority-process") == 0)
        r = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    else if (strcmp(name, "getpriority-pgrp") == 0)
        r = syscall(SYS_getpriority, PRIO_PGRP, 0);
    else if (strcmp(name, "uname") == 0) {
        struct utsname u;
        r = syscall(SYS_uname, &u);
    } else if (strcmp(name, "sched_yield") == 0)
        r = syscall(SYS_sched_yield);
    else
        return -1;
    return r < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
    const char *stats[MAX_OPTS], *accesses[MAX_OPTS], *reads[MAX_OPTS];
    const char *opens[MAX_OPTS], *sysctls[MAX_OPTS], *calls[MAX_OPTS];
    int nstat = 0, naccess = 0, nread = 0, nopen = 0, nsysctl = 0, ncall = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *opt = argv[i], *val = argv[i + 1];
        if (strcmp(opt, "--stat") == 0 && nstat < MAX_OPTS)
            stats[nstat++] = val;
        else if (strcmp(opt, "--access") == 0 && naccess < MAX_OPTS)
            accesses[naccess++] = val;
        else if (strcmp(opt, "--read") == 0 && nread < MAX_OPTS)
            reads[nread++] = val;
        else if (strcmp(opt, "--open") == 0 && nopen < MAX_OPTS)
            opens[nopen++] = val;
        else if (strcmp(opt, "--sysctl") == 0 && nsysctl < MAX_OPTS)
            sysctls[nsysctl++] = val;
        else if (strcmp(opt, "--call") == 0 && ncall < MAX_OPTS)
            calls[ncall++] = val;
    }

    /* Observe the umask before anything else could change it. */
    mode_t mask = umask(0);
    umask(mask);

    char *report = NULL;
    size_t report_len = 0;
    out = open_memstream(&report, &report_len);
    if (!out)
        return 2;
    fputc('{', out);
    kv_str("probe", "ociish-conformance");
    kv_int("pid", getpid());
    kv_int("ppid", getppid());
    kv_int("umask", mask);
    open_arr("argv");
    for (int i = 0; i < argc; i++)
        arr_str(argv[i]);
    close_arr();
    extern char **environ;
    open_arr("env");
    for (char **e = environ; *e; e++)
        arr_str(*e);
    close_arr();
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd))
        kv_str("cwd", cwd);
    else
        kv_int("cwd_errno", errno);
    report_ids();
    report_status();
    report_rlimits();
    report_uname();
    report_namespaces();
    report_sched();
    report_clocks();
    report_stdio();
    report_fds();
    report_netifs();
    file_lines("mountinfo", "/proc/self/mountinfo");
    file_lines("cgroup", "/proc/self/cgroup");
    char oom[32];
    if (slurp("/proc/self/oom_score_adj", oom, sizeof oom) > 0)
        kv_int("oom_score_adj", atoi(oom));
    report_dir("dev", "/dev");

    open_obj("stat");
    for (int i = 0; i < nstat; i++)
        stat_obj(stats[i], stats[i]);
    close_obj();
    open_obj("access");
    for (int i = 0; i < naccess; i++)
        access_obj(accesses[i]);
    close_obj();
    open_obj("read");
    for (int i = 0; i < nread; i++)
        read_obj(reads[i]);
    close_obj();
    open_obj("open");
    for (int i = 0; i < nopen; i++) {
        int fd = open(opens[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        kv_int(opens[i], fd < 0 ? errno : 0);
        if (fd >= 0)
            close(fd);
    }
    close_obj();
    open_obj("sysctl");
    for (int i = 0; i < nsysctl; i++)
        sysctl_obj(sysctls[i]);
    close_obj();
    open_obj("calls");
    for (int i = 0; i < ncall; i++)
        kv_int(calls[i], do_call(calls[i]));
    close_obj();

    kv_bool("complete", 1);
    fputs("}\n", out);
    fclose(out);

    size_t off = 0;
    while (off < report_len) {
        ssize_t n = write(STDOUT_FILENO, report + off, report_len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 3;
        }
        off += (size_t)n;
    }
    free(report);
    return 0;
}
