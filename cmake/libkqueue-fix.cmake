# cmake -DSOURCE_DIR=<unpacked libkqueue> -P libkqueue-fix.cmake
#
# One fix to the unpacked copy in the build folder. linux_kevent_wait asks
# epoll_wait for as many events as kevent() has slots, but one epoll event
# can turn into two kevents (an fd's read and write filters share one
# epoll registration); linux_kevent_copyout stops when the slots run out
# and the epoll events it did not copy are lost, for good, since they are
# edge-triggered (EV_CLEAR). Asking for half as many makes them all fit.
set(f ${SOURCE_DIR}/src/linux/platform.c)
file(READ ${f} text)
set(old "epoll_wait(kqueue_epoll_fd(kq), epoll_events, nevents, timeout)")
set(new "epoll_wait(kqueue_epoll_fd(kq), epoll_events, nevents > 1 ? nevents / 2 : 1, timeout)")
string(FIND "${text}" "${old}" at)
if(at EQUAL -1)
  string(FIND "${text}" "${new}" done)
  if(done EQUAL -1)
    message(FATAL_ERROR "libkqueue-fix: '${old}' not found in ${f}: check the fix against this libkqueue")
  endif()
  return()
endif()
string(REPLACE "${old}" "${new}" text "${text}")
file(WRITE ${f} "${text}")
