/*
 * The kernel image is checked before /dev/kvm is opened (issue #16): a bad one gets
 * its own clear error on any host (this one has no KVM), from the command line,
 * a config file or InstanceStart alike (ctl_start).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/api_fixture.h"

TestSuite(kernel_check, .init = api_fx_setup, .fini = api_fx_teardown);

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void refused(const char *path, const char *frag)
{
    struct errmsg err = {{0}};
    cr_expect_lt(ctl_check_kernel_file(path, &err), 0, "%s accepted", path);
    cr_expect(strstr(err.text, frag), "%s: '%s' lacks '%s'", path, err.text, frag);
}

Test(kernel_check, bad_images_refused_good_magic_accepted)
{
    refused(notkernel, "neither an ELF vmlinux nor a bzImage");
    refused(missing, "No such file");
    refused("/tmp", "is a directory, not a regular file");
    char dir[] = "/tmp/ember-kcheck-XXXXXX", empty[64], fifo[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(empty, sizeof(empty), "%s/k", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    write_file(empty, "", 0);
    refused(empty, "is empty");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    refused(fifo, "FIFO"); /* opened without blocking: nobody holds the other end */
    unlink(fifo);
    /* A 3-byte file cut inside the ELF magic. */
    write_file(empty, "\177EL", 3);
    refused(empty, "neither");
    write_file(empty, "\177ELF\2\1\1", 7);
    struct errmsg err = {{0}};
    cr_expect_eq(ctl_check_kernel_file(empty, &err), 0, "%s", err.text);
    static unsigned char bz[0x300];
    bz[0x1fe] = 0x55, bz[0x1ff] = 0xaa;
    memcpy(bz + 0x202, "HdrS", 4);
    write_file(empty, bz, sizeof(bz));
    cr_expect_eq(ctl_check_kernel_file(empty, &err), 0, "%s", err.text);
    bz[0x1fe] = 0;
    write_file(empty, bz, sizeof(bz));
    refused(empty, "neither");
    unlink(empty);
    rmdir(dir);
}

Test(kernel_check, instance_start_names_the_kernel_not_kvm)
{
    expect_204("PUT", "/boot-source", fmt("{\"kernel_image_path\":\"%s\"}", notkernel));
    req("PUT", "/actions", "{\"action_type\":\"InstanceStart\"}");
    fault_ok("InstanceStart with a text file as kernel", "neither an ELF vmlinux nor a bzImage", notkernel);
}
