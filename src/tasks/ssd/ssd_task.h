/* ssd_task.h (internal) - the ssd actions (src/tasks/ssd). */
#ifndef DEFT_TASKS_SSD_TASK_H
#define DEFT_TASKS_SSD_TASK_H
#include "deft/task.h"

#define DEFT_SSD_NOT_FINISHED "not finished yet (issue 20)"
enum deft_status ssd_train(const struct deft_task_args *a);
enum deft_status ssd_not_finished(const struct deft_task_args *a, const char *action);
#endif
