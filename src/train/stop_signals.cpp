// SIGINT, SIGTERM and SIGHUP ask a training to stop at the next step and save its checkpoint; a
// second SIGINT exits at once.
#include <unistd.h>

#include <atomic>
#include <csignal>

#include "convpool/trainer.h"

namespace convpool {

namespace {
std::atomic<int> g_stop_requests{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop_requests.fetch_add(1) >= 1 && sig == SIGINT) {
    static const char msg[] = "\nconvpool: second interrupt, exiting now\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(130);
  }
}

}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // the terminal closed: save and stop, as for SIGTERM
}
bool stop_requested() { return g_stop_requests.load() > 0; }
void request_stop() { g_stop_requests.fetch_add(1); }
void clear_stop_requests() { g_stop_requests.store(0); }

}  // namespace convpool
