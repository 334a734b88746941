// libxcrypt (Debian's libcrypt): yescrypt password hashes for liandong-console's users file.
#include <crypt.h>
