/* test_sha256.c - SHA-256 against the FIPS 180-4 example digests, and
 * streaming in pieces of every size giving the one-shot digest. */
#include <string.h>
#include "deft_test.h"
#include "deft/io.h"

static void digest(const void *p, size_t n, char hex[65]) {
    struct deft_sha256 s;
    deft_sha256_init(&s);
    deft_sha256_update(&s, p, n);
    deft_sha256_final(&s, hex);
}

int main(void) {
    char hex[65];
    digest("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty: %s", hex);
    digest("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc: %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448 bits: %s", hex);
    static char mil[1000000];
    memset(mil, 'a', sizeof mil);
    digest(mil, sizeof mil, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
    /* the same bytes fed in pieces of 1..130 bytes */
    char piece[65];
    for (size_t step = 1; step <= 130; step++) {
        struct deft_sha256 s;
        deft_sha256_init(&s);
        for (size_t i = 0; i < 5000; i += step) deft_sha256_update(&s, mil + i, i + step > 5000 ? 5000 - i : step);
        deft_sha256_final(&s, piece);
        digest(mil, 5000, hex);
        CHECK(!strcmp(piece, hex), "pieces of %zu", step);
    }
    CHECK(deft_sha256_matches(hex, "") == false, "empty prefix refused");
    CHECK(deft_sha256_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "BA7816BF"),
          "prefix, upper case");
    CHECK(!deft_sha256_matches("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "ba7816b0"),
          "wrong prefix");
    return test_summary();
}
