/* frcnn_task.h (internal) - the faster_rcnn actions (src/tasks/faster_rcnn). */
#ifndef DEFT_TASKS_FRCNN_TASK_H
#define DEFT_TASKS_FRCNN_TASK_H
#include "deft/task.h"

enum deft_status frcnn_train(const struct deft_task_args *a);
#endif
