# cmake -DAR=<ar> -DSCRIPT=<file> -P ar-script.cmake: run an MRI script
# through `ar -M` (which reads it from standard input).
execute_process(COMMAND ${AR} -M INPUT_FILE ${SCRIPT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${AR} -M < ${SCRIPT} failed: ${rc}")
endif()
